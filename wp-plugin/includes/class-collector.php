<?php
/**
 * Gathers what the admin page and Site Health show, and performs the page's actions.
 * Returns the plain objects of class-report.php; prints nothing.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

/**
 * The collector.
 */
class SSM_DB_Config_Collector {
	/** Budget for the live connectivity check, in seconds. */
	const PROBE_BUDGET = 1.5;

	/**
	 * @param SSM_DB_Config_Dropins $dropins Drop-in files.
	 */
	public function __construct( private readonly SSM_DB_Config_Dropins $dropins ) {
	}

	/**
	 * The drop-ins helper.
	 */
	public function dropins(): SSM_DB_Config_Dropins {
		return $this->dropins;
	}

	/**
	 * The whole report.
	 *
	 * @param bool                             $probe  Run the live connectivity check.
	 * @param SSM_DB_Config_Action_Result|null $action The action just taken.
	 */
	public function collect( bool $probe = true, ?SSM_DB_Config_Action_Result $action = null ): SSM_DB_Config_Report {
		$extension = $this->extension();
		return new SSM_DB_Config_Report(
			$extension,
			$this->database( $extension ),
			$probe ? $this->probe() : null,
			$this->dropins->states(),
			$this->dropins->failover_mode(),
			$this->dropins->writable(),
			$action
		);
	}

	/**
	 * The extension's state in this process.
	 */
	public function extension(): SSM_DB_Config_Extension_State {
		if ( ! extension_loaded( 'ssm_db_config' ) || ! function_exists( 'ssm_db_config_status' ) ) {
			return new SSM_DB_Config_Extension_State( false, null, array(), false, 'not_loaded' );
		}
		$status = ssm_db_config_status();
		$fresh  = ! empty( $status['cached'] ) && ! empty( $status['fresh'] );
		return new SSM_DB_Config_Extension_State(
			true,
			isset( $status['extension_version'] ) ? (string) $status['extension_version'] : (string) phpversion( 'ssm_db_config' ),
			$status,
			$fresh,
			self::freshness( $status )
		);
	}

	/**
	 * Why the value is fresh or not, as a code.
	 *
	 * Builds that report `state` (empty, fresh, refresh_due, stale, too_old) are read from it:
	 * there "stale" means refreshing failed and the last good value is served (stale-if-error,
	 * up to max_stale). Older builds report only `cached` and `fresh`.
	 *
	 * @param array $status ssm_db_config_status().
	 * @return string fresh, refresh_due, stale, serving_stale, too_old, not_cached or failing.
	 */
	public static function freshness( array $status ): string {
		if ( isset( $status['state'] ) && is_string( $status['state'] ) ) {
			switch ( $status['state'] ) {
				case 'fresh':
					return 'fresh';
				case 'refresh_due':
					return 'refresh_due';
				case 'stale':
					return 'serving_stale';
				case 'too_old':
					return 'too_old';
				case 'empty':
					return empty( $status['last_error'] ) ? 'not_cached' : 'failing';
			}
		}
		if ( empty( $status['cached'] ) ) {
			return empty( $status['last_error'] ) ? 'not_cached' : 'failing';
		}
		if ( ! empty( $status['fresh'] ) ) {
			return 'fresh';
		}
		return empty( $status['last_error'] ) ? 'stale' : 'failing';
	}

	/**
	 * The database WordPress uses, from its own settings (never the password).
	 *
	 * @param SSM_DB_Config_Extension_State $extension Extension state.
	 */
	public function database( SSM_DB_Config_Extension_State $extension ): array {
		global $wpdb;
		return array(
			'engine' => (string) ( $extension->status['engine'] ?? ( defined( 'DB_ENGINE' ) ? DB_ENGINE : 'mysql' ) ),
			'host'   => isset( $wpdb->dbhost ) ? (string) $wpdb->dbhost : ( defined( 'DB_HOST' ) ? DB_HOST : '' ),
			'user'   => isset( $wpdb->dbuser ) ? (string) $wpdb->dbuser : ( defined( 'DB_USER' ) ? DB_USER : '' ),
			'name'   => isset( $wpdb->dbname ) ? (string) $wpdb->dbname : ( defined( 'DB_NAME' ) ? DB_NAME : '' ),
		);
	}

	/**
	 * Connects to the database that SSM names and asks whether it is a writer, as the health
	 * endpoint does (SSM_DB_Config_Db_Probe::check_configured): over TLS for an IAM value, and
	 * once more with a new password or token when the login is refused.
	 */
	public function probe(): SSM_DB_Config_Probe_Result {
		$start = microtime( true );
		if ( ! function_exists( 'ssm_db_config' ) ) {
			return new SSM_DB_Config_Probe_Result( false, false, SSM_DB_Config_Probe_Result::CONFIG_UNAVAILABLE, 0.0, '', null );
		}
		try {
			return ( new SSM_DB_Config_Db_Probe() )->check_configured( $start + self::PROBE_BUDGET );
		} catch ( \Throwable $e ) {
			// What ssm_db_config() throws when there is no value to probe with.
			return new SSM_DB_Config_Probe_Result( false, false, SSM_DB_Config_Probe_Result::CONFIG_UNAVAILABLE, round( ( microtime( true ) - $start ) * 1000, 1 ), '', $e->getMessage() );
		}
	}

	/**
	 * Fetches from SSM now (the admin's "Refresh now"; not rate-limited: one click, one fetch).
	 */
	public function refresh(): SSM_DB_Config_Action_Result {
		if ( ! function_exists( 'ssm_db_config_refresh' ) ) {
			return new SSM_DB_Config_Action_Result( 'refresh', false, 'not_loaded' );
		}
		$start   = microtime( true );
		$fetches = (int) ( ssm_db_config_status()['fetches'] ?? 0 );
		try {
			ssm_db_config_refresh();
		} catch ( \Throwable $e ) {
			return new SSM_DB_Config_Action_Result(
				'refresh',
				false,
				'failed',
				array(
					'kind'        => self::error_kind( (int) $e->getCode() ),
					'message'     => $e->getMessage(),
					'duration_ms' => round( ( microtime( true ) - $start ) * 1000, 1 ),
				)
			);
		}
		$status = ssm_db_config_status();
		// The extension answers with a value fetched within the last second (by any process)
		// instead of asking SSM again; say which happened.
		return new SSM_DB_Config_Action_Result(
			'refresh',
			true,
			(int) ( $status['fetches'] ?? 0 ) > $fetches ? 'fetched' : 'reused',
			array(
				'version'     => $status['version'] ?? null,
				'fetches'     => $status['fetches'] ?? null,
				'duration_ms' => round( ( microtime( true ) - $start ) * 1000, 1 ),
			)
		);
	}

	/**
	 * The name of an SsmDbConfigException code.
	 *
	 * @param int $code Exception code.
	 */
	public static function error_kind( int $code ): string {
		$kinds = array(
			1 => 'not_found',
			2 => 'access_denied',
			3 => 'throttled',
			4 => 'timeout',
			5 => 'network',
			6 => 'invalid_value',
			7 => 'no_credentials',
			8 => 'bad_configuration',
			9 => 'service',
		);
		return $kinds[ $code ] ?? 'unknown';
	}
}
