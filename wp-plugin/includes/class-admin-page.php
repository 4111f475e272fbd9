<?php
/**
 * Tools → Database Config: registers the page, handles its actions and renders the report.
 *
 * Every action checks the nonce first, then the capability; the page callback checks the
 * capability again (WordPress already checked it for the menu, but a callback can be reached
 * other ways).
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

/**
 * The admin page.
 */
final class SSM_DB_Config_Admin_Page {
	/** Page slug. */
	const SLUG = 'ssm-db-config';

	/** Capability needed for the page and its actions. */
	const CAPABILITY = 'manage_options';

	/** Option that records which drop-ins this plugin installed, and when. */
	const OPTION_DROPINS = 'ssm_db_config_installed_dropins';

	/** Constant (wp-config.php) that forbids installing or removing drop-ins from the page. */
	const DISALLOW_DROPINS = 'SSM_DB_CONFIG_DISALLOW_DROPINS';

	/** Capability that multisite asks for network-wide things: a drop-in runs for every site. */
	const NETWORK_CAPABILITY = 'manage_network_options';

	/**
	 * Result of the action handled in this request.
	 *
	 * @var SSM_DB_Config_Action_Result|null
	 */
	private ?SSM_DB_Config_Action_Result $action = null;

	/**
	 * @param SSM_DB_Config_Collector $collector Data source.
	 */
	public function __construct( private readonly SSM_DB_Config_Collector $collector ) {
	}

	/**
	 * Hooks into WordPress.
	 */
	public function register(): void {
		add_action( 'admin_menu', array( $this, 'add_page' ) );
		add_action( 'init', array( $this, 'load_textdomain' ) );
	}

	/**
	 * Loads translations.
	 */
	public function load_textdomain(): void {
		load_plugin_textdomain( 'ssm-db-config', false, dirname( plugin_basename( SSM_DB_CONFIG_PLUGIN_FILE ) ) . '/languages' );
	}

	/**
	 * Adds Tools → Database Config.
	 */
	public function add_page(): void {
		$hook = add_management_page(
			__( 'Database Config', 'ssm-db-config' ),
			__( 'Database Config', 'ssm-db-config' ),
			self::CAPABILITY,
			self::SLUG,
			array( $this, 'render' )
		);
		if ( $hook ) {
			add_action( 'load-' . $hook, array( $this, 'handle_action' ) );
		}
	}

	/**
	 * The page URL.
	 */
	public static function url(): string {
		return admin_url( 'tools.php?page=' . self::SLUG );
	}

	/**
	 * Handles a POST from the page: nonce, then capability, then the action.
	 */
	public function handle_action(): void {
		if ( 'POST' !== ( $_SERVER['REQUEST_METHOD'] ?? '' ) || ! isset( $_POST['ssm_db_config_action'] ) ) { // phpcs:ignore WordPress.Security.NonceVerification -- checked below, before anything happens.
			return;
		}
		$action = sanitize_key( wp_unslash( $_POST['ssm_db_config_action'] ) ); // phpcs:ignore WordPress.Security.NonceVerification
		$file   = isset( $_POST['dropin'] ) ? sanitize_file_name( wp_unslash( $_POST['dropin'] ) ) : ''; // phpcs:ignore WordPress.Security.NonceVerification
		check_admin_referer( self::nonce_action( $action, $file ) );
		if ( ! current_user_can( self::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to change the database configuration.', 'ssm-db-config' ), 403 );
		}
		switch ( $action ) {
			case 'refresh':
				$this->action = $this->collector->refresh();
				break;
			case 'install':
			case 'remove':
				if ( ! in_array( $file, SSM_DB_Config_Dropins::NAMES, true ) ) {
					wp_die( esc_html__( 'Unknown drop-in.', 'ssm-db-config' ), 400 );
				}
				$refusal = self::current_dropins_refusal();
				if ( null !== $refusal ) {
					wp_die( esc_html( SSM_DB_Config_Labels::dropins_refusal( $refusal ) ), 403 );
				}
				$this->action = $this->dropin_action( $action, $file );
				break;
			default:
				wp_die( esc_html__( 'Unknown action.', 'ssm-db-config' ), 400 );
		}
	}

	/**
	 * The nonce action for one of the page's forms.
	 *
	 * @param string $action refresh, install, remove.
	 * @param string $file   Drop-in name, for install and remove.
	 */
	public static function nonce_action( string $action, string $file = '' ): string {
		return 'ssm_db_config_' . $action . ( '' === $file ? '' : '_' . $file );
	}

	/**
	 * Why drop-ins may not be installed or removed from the page, or null when they may. Pure:
	 * the caller says what WordPress knows.
	 *
	 * @param bool $dropins_disallowed SSM_DB_CONFIG_DISALLOW_DROPINS is true.
	 * @param bool $file_mods_allowed  wp_is_file_mod_allowed() (false under DISALLOW_FILE_MODS).
	 * @param bool $multisite          is_multisite().
	 * @param bool $network_admin      The user has manage_network_options (a super admin).
	 * @return string|null dropins_disallowed, file_mods_disallowed, network_admin_only, or null.
	 */
	public static function dropins_refusal( bool $dropins_disallowed, bool $file_mods_allowed, bool $multisite, bool $network_admin ): ?string {
		if ( $dropins_disallowed ) {
			return 'dropins_disallowed';
		}
		if ( ! $file_mods_allowed ) {
			return 'file_mods_disallowed';
		}
		if ( $multisite && ! $network_admin ) {
			// wp-content/db.php runs for every site of the network, not only this one.
			return 'network_admin_only';
		}
		return null;
	}

	/**
	 * dropins_refusal() for the current user and site.
	 */
	public static function current_dropins_refusal(): ?string {
		return self::dropins_refusal(
			defined( self::DISALLOW_DROPINS ) && (bool) constant( self::DISALLOW_DROPINS ),
			wp_is_file_mod_allowed( 'ssm_db_config_dropins' ),
			is_multisite(),
			current_user_can( self::NETWORK_CAPABILITY )
		);
	}

	/**
	 * Whether the user may see the database host and user (and the live check's driver
	 * message, which can name them). On multisite they are the network's, not the site's:
	 * network administrators only.
	 *
	 * @param bool $multisite     is_multisite().
	 * @param bool $network_admin The user has manage_network_options.
	 */
	public static function may_see_database_identity( bool $multisite, bool $network_admin ): bool {
		return ! $multisite || $network_admin;
	}

	/**
	 * Installs or removes a drop-in and records it.
	 *
	 * @param string $action install or remove.
	 * @param string $file   Drop-in name.
	 */
	private function dropin_action( string $action, string $file ): SSM_DB_Config_Action_Result {
		$dropins = $this->collector->dropins();
		$result  = 'install' === $action ? $dropins->install( $file ) : $dropins->remove( $file );
		if ( $result['ok'] ) {
			$installed = (array) get_option( self::OPTION_DROPINS, array() );
			if ( 'install' === $action ) {
				$installed[ $file ] = time();
			} else {
				unset( $installed[ $file ] );
			}
			update_option( self::OPTION_DROPINS, $installed, false );
		}
		return new SSM_DB_Config_Action_Result( $action, $result['ok'], $result['code'], array( 'file' => $file ) );
	}

	/**
	 * Renders the page.
	 */
	public function render(): void {
		if ( ! current_user_can( self::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to access this page.', 'ssm-db-config' ), 403 );
		}
		$report          = $this->collector->collect( true, $this->action );
		$installed       = (array) get_option( self::OPTION_DROPINS, array() );
		$page_url        = self::url();
		$dropins_refusal = self::current_dropins_refusal();
		$show_identity   = self::may_see_database_identity( is_multisite(), current_user_can( self::NETWORK_CAPABILITY ) );
		require dirname( __DIR__ ) . '/templates/admin-page.php';
	}
}
