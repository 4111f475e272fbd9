<?php
/**
 * Site Health: direct tests for the configuration, an async REST test for the database, and a
 * private section in the Info tab. Results use core's shape (label, status, badge,
 * description, actions, test).
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

/**
 * Site Health integration.
 */
final class SSM_DB_Config_Site_Health {
	/** REST namespace and route of the async test. */
	const REST_NAMESPACE = 'ssm-db-config/v1';
	const REST_ROUTE     = '/site-health/database';

	/**
	 * @param SSM_DB_Config_Collector $collector Data source.
	 */
	public function __construct( private readonly SSM_DB_Config_Collector $collector ) {
	}

	/**
	 * Hooks into WordPress.
	 */
	public function register(): void {
		add_filter( 'site_status_tests', array( $this, 'tests' ) );
		add_filter( 'debug_information', array( $this, 'debug_information' ) );
		add_action( 'rest_api_init', array( $this, 'register_route' ) );
	}

	/**
	 * Adds our tests.
	 *
	 * @param array $tests Core's tests.
	 */
	public function tests( array $tests ): array {
		$tests['direct']['ssm_db_config_extension'] = array(
			'label' => __( 'SSM DB Config extension', 'ssm-db-config' ),
			'test'  => array( $this, 'test_extension' ),
		);
		$tests['direct']['ssm_db_config_parameter'] = array(
			'label' => __( 'SSM parameter setting', 'ssm-db-config' ),
			'test'  => array( $this, 'test_parameter' ),
		);
		$tests['direct']['ssm_db_config_fresh']     = array(
			'label' => __( 'Database settings freshness', 'ssm-db-config' ),
			'test'  => array( $this, 'test_fresh' ),
		);
		$tests['async']['ssm_db_config_database']   = array(
			'label'             => __( 'Database reachable and writable', 'ssm-db-config' ),
			'test'              => rest_url( self::REST_NAMESPACE . self::REST_ROUTE ),
			'has_rest'          => true,
			'async_direct_test' => array( $this, 'test_database' ),
		);
		return $tests;
	}

	/**
	 * The async test's REST route.
	 */
	public function register_route(): void {
		register_rest_route(
			self::REST_NAMESPACE,
			self::REST_ROUTE,
			array(
				'methods'             => 'GET',
				'callback'            => array( $this, 'test_database' ),
				'permission_callback' => static function () {
					return current_user_can( 'view_site_health_checks' );
				},
			)
		);
	}

	/**
	 * Is the extension loaded?
	 */
	public function test_extension(): array {
		$ext = $this->collector->extension();
		if ( $ext->loaded ) {
			/* translators: %s: version */
			return $this->result( 'ssm_db_config_extension', 'good', __( 'The ssm_db_config extension is loaded', 'ssm-db-config' ), sprintf( __( 'Version %s reads the database settings from SSM Parameter Store.', 'ssm-db-config' ), (string) $ext->version ) );
		}
		return $this->result( 'ssm_db_config_extension', 'critical', __( 'The ssm_db_config extension is not loaded', 'ssm-db-config' ), __( 'WordPress cannot take its database settings from SSM Parameter Store. Install the extension and enable it in php.ini.', 'ssm-db-config' ), true );
	}

	/**
	 * Is ssm_db_config.parameter set?
	 */
	public function test_parameter(): array {
		$ext = $this->collector->extension();
		$parameter = (string) ( $ext->status['parameter'] ?? '' );
		if ( ! $ext->loaded ) {
			return $this->result( 'ssm_db_config_parameter', 'recommended', __( 'No SSM parameter: the extension is not loaded', 'ssm-db-config' ), __( 'Load the ssm_db_config extension first.', 'ssm-db-config' ), true );
		}
		if ( '' === $parameter ) {
			return $this->result( 'ssm_db_config_parameter', 'critical', __( 'ssm_db_config.parameter is not set', 'ssm-db-config' ), __( 'Set ssm_db_config.parameter in php.ini to the name of the SSM parameter that holds the database settings.', 'ssm-db-config' ), true );
		}
		/* translators: %s: parameter name */
		return $this->result( 'ssm_db_config_parameter', 'good', __( 'The SSM parameter is set', 'ssm-db-config' ), sprintf( __( 'The database settings come from %s.', 'ssm-db-config' ), $parameter ) );
	}

	/**
	 * Is the cached value fresh?
	 */
	public function test_fresh(): array {
		$ext = $this->collector->extension();
		if ( ! $ext->loaded ) {
			return $this->result( 'ssm_db_config_fresh', 'recommended', __( 'Database settings are not from SSM', 'ssm-db-config' ), __( 'The ssm_db_config extension is not loaded.', 'ssm-db-config' ), true );
		}
		$text = SSM_DB_Config_Labels::freshness( $ext->freshness, $ext->status );
		if ( in_array( $ext->freshness, array( 'fresh', 'refresh_due', 'not_cached' ), true ) ) {
			return $this->result( 'ssm_db_config_fresh', 'good', __( 'The database settings from SSM are current', 'ssm-db-config' ), $text );
		}
		if ( in_array( $ext->freshness, array( 'too_old', 'failing' ), true ) ) {
			return $this->result( 'ssm_db_config_fresh', 'critical', __( 'The database settings cannot be read from SSM', 'ssm-db-config' ), $text, true );
		}
		return $this->result( 'ssm_db_config_fresh', 'recommended', __( 'The database settings from SSM may be out of date', 'ssm-db-config' ), $text, true );
	}

	/**
	 * Can the database be reached, and is it a writer? (Async: it connects.)
	 */
	public function test_database(): array {
		$probe = $this->collector->probe();
		/* translators: %s: milliseconds */
		$latency = sprintf( __( 'The check took %s ms.', 'ssm-db-config' ), number_format_i18n( $probe->latency_ms, 1 ) );
		$text    = SSM_DB_Config_Labels::probe_reason( $probe->reason ) . ' ' . $latency;
		if ( $probe->writer ) {
			return $this->result( 'ssm_db_config_database', 'good', __( 'The database is reachable and accepts writes', 'ssm-db-config' ), $text );
		}
		return $this->result( 'ssm_db_config_database', 'critical', __( 'The database in SSM is not a reachable writer', 'ssm-db-config' ), $text, true );
	}

	/**
	 * Adds a private section to Site Health → Info (hosts and users are private).
	 *
	 * @param array $info Core's sections.
	 */
	public function debug_information( array $info ): array {
		$ext    = $this->collector->extension();
		$status = $ext->status;
		$fields = array(
			'loaded' => array(
				'label' => __( 'Extension loaded', 'ssm-db-config' ),
				'value' => $ext->loaded ? __( 'Yes', 'ssm-db-config' ) : __( 'No', 'ssm-db-config' ),
				'debug' => $ext->loaded,
			),
		);
		if ( $ext->loaded ) {
			$error  = is_array( $status['last_error'] ?? null ) ? $status['last_error'] : null;
			$fields += array(
				'version'   => array( 'label' => __( 'Extension version', 'ssm-db-config' ), 'value' => (string) $ext->version ),
				'parameter' => array( 'label' => __( 'Parameter', 'ssm-db-config' ), 'value' => (string) ( $status['parameter'] ?? '' ), 'private' => true ),
				'region'    => array( 'label' => __( 'Region', 'ssm-db-config' ), 'value' => (string) ( $status['region'] ?? '' ) ),
				'engine'    => array( 'label' => __( 'Engine', 'ssm-db-config' ), 'value' => (string) ( $status['engine'] ?? '' ) ),
				'host'      => array( 'label' => __( 'Database host', 'ssm-db-config' ), 'value' => (string) ( $status['host'] ?? '' ), 'private' => true ),
				'user'      => array( 'label' => __( 'Database user', 'ssm-db-config' ), 'value' => (string) ( $status['user'] ?? '' ), 'private' => true ),
				'freshness' => array( 'label' => __( 'Cache', 'ssm-db-config' ), 'value' => SSM_DB_Config_Labels::freshness( $ext->freshness, $status ), 'debug' => $ext->freshness ),
				'ttl'       => array( 'label' => __( 'TTL (s)', 'ssm-db-config' ), 'value' => (string) (int) ( $status['ttl_seconds'] ?? 0 ) ),
				'counters'  => array( 'label' => __( 'Hits / misses / fetches / errors', 'ssm-db-config' ), 'value' => sprintf( '%d / %d / %d / %d', (int) ( $status['hits'] ?? 0 ), (int) ( $status['misses'] ?? 0 ), (int) ( $status['fetches'] ?? 0 ), (int) ( $status['errors'] ?? 0 ) ) ),
				'last_error' => array( 'label' => __( 'Last error', 'ssm-db-config' ), 'value' => null === $error ? __( 'None', 'ssm-db-config' ) : (string) ( $error['kind'] ?? '' ) . ': ' . (string) ( $error['message'] ?? '' ) ),
			);
		}
		$fields['failover'] = array( 'label' => __( 'Failover drop-in', 'ssm-db-config' ), 'value' => $this->collector->dropins()->failover_mode() );

		$info['ssm-db-config'] = array(
			'label'   => __( 'SSM DB Config', 'ssm-db-config' ),
			'private' => true,
			'fields'  => $fields,
		);
		return $info;
	}

	/**
	 * A result in core's shape.
	 *
	 * @param string $test        Test id.
	 * @param string $status      good, recommended or critical.
	 * @param string $label       Headline.
	 * @param string $description Plain text, escaped here.
	 * @param bool   $link        Add a link to Tools → Database Config.
	 */
	private function result( string $test, string $status, string $label, string $description, bool $link = false ): array {
		return array(
			'label'       => $label,
			'status'      => $status,
			'badge'       => array(
				'label' => __( 'Database', 'ssm-db-config' ),
				'color' => 'good' === $status ? 'blue' : ( 'critical' === $status ? 'red' : 'orange' ),
			),
			'description' => '<p>' . esc_html( $description ) . '</p>',
			'actions'     => $link ? sprintf( '<p><a href="%s">%s</a></p>', esc_url( SSM_DB_Config_Admin_Page::url() ), esc_html__( 'Open Tools → Database Config', 'ssm-db-config' ) ) : '',
			'test'        => $test,
		);
	}
}
