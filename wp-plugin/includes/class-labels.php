<?php
/**
 * Translated words for the stable codes in the report (shared by the page and Site Health).
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

/**
 * Labels.
 */
final class SSM_DB_Config_Labels {
	/**
	 * Why the cached value is fresh or not.
	 *
	 * @param string $code  fresh, stale, not_cached, failing, not_loaded.
	 * @param array  $status ssm_db_config_status().
	 */
	public static function freshness( string $code, array $status ): string {
		$age = isset( $status['age_seconds'] ) ? (int) round( (float) $status['age_seconds'] ) : 0;
		$ttl = (int) ( $status['ttl_seconds'] ?? 0 );
		switch ( $code ) {
			case 'fresh':
				/* translators: 1: age in seconds, 2: TTL in seconds */
				return sprintf( __( 'Fresh: fetched %1$d s ago, within the TTL of %2$d s.', 'ssm-db-config' ), $age, $ttl );
			case 'refresh_due':
				/* translators: 1: age in seconds, 2: TTL in seconds */
				return sprintf( __( 'Fresh: fetched %1$d s ago; a refresh ahead of the TTL of %2$d s is due and runs in the background.', 'ssm-db-config' ), $age, $ttl );
			case 'stale':
				/* translators: 1: age in seconds, 2: TTL in seconds */
				return sprintf( __( 'Stale: fetched %1$d s ago, past the TTL of %2$d s; the next call fetches again.', 'ssm-db-config' ), $age, $ttl );
			case 'serving_stale':
				if ( empty( $status['stale_reason'] ) ) {
					/* translators: 1: age in seconds, 2: TTL in seconds */
					return sprintf( __( 'Stale: fetched %1$d s ago, past the TTL of %2$d s; a refresh runs in the background and the last value is served meanwhile.', 'ssm-db-config' ), $age, $ttl );
				}
				/* translators: 1: age in seconds, 2: reason */
				return sprintf( __( 'Stale: refreshing from SSM failed, so the last good value (fetched %1$d s ago) is served until SSM answers again. Reason: %2$s', 'ssm-db-config' ), $age, (string) $status['stale_reason'] );
			case 'too_old':
				/* translators: %d: max_stale in seconds */
				return sprintf( __( 'Too old: refreshing has failed for longer than ssm_db_config.max_stale (%d s); the value is no longer served.', 'ssm-db-config' ), (int) ( $status['max_stale_seconds'] ?? 0 ) );
			case 'failing':
				return __( 'Failing: the last fetch from SSM failed (see the last error).', 'ssm-db-config' );
			case 'not_cached':
				return __( 'Not cached yet in this PHP process: the next call fetches from SSM.', 'ssm-db-config' );
			default:
				return __( 'The ssm_db_config extension is not loaded.', 'ssm-db-config' );
		}
	}

	/**
	 * A probe's reason.
	 *
	 * @param string $reason Reason code.
	 */
	public static function probe_reason( string $reason ): string {
		$labels = array(
			SSM_DB_Config_Probe_Result::WRITER             => __( 'Connected; the server accepts writes.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::READ_ONLY          => __( 'Connected, but the server is read-only (read_only or innodb_read_only is on).', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::IN_RECOVERY        => __( 'Connected, but the server is a standby in recovery.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::CONNECT_FAILED     => __( 'Could not connect.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::TIMEOUT            => __( 'No answer within the time allowed.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::QUERY_FAILED       => __( 'Connected, but the check query failed.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::DRIVER_MISSING     => __( 'The PHP database driver for this engine is not loaded.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::UNKNOWN_ENGINE     => __( 'Unknown database engine.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::CONFIG_UNAVAILABLE => __( 'No database settings: the value could not be read from SSM.', 'ssm-db-config' ),
			SSM_DB_Config_Probe_Result::BAD_OPTION         => __( 'Not checked: a connection option in the value cannot be used as written (see the detail).', 'ssm-db-config' ),
		);
		return $labels[ $reason ] ?? $reason;
	}

	/**
	 * A drop-in's state.
	 *
	 * @param string $state absent, ours, outdated, foreign.
	 */
	public static function dropin_state( string $state ): string {
		$labels = array(
			SSM_DB_Config_Dropins::ABSENT   => __( 'Not installed', 'ssm-db-config' ),
			SSM_DB_Config_Dropins::OURS     => __( 'Installed (this plugin\'s)', 'ssm-db-config' ),
			SSM_DB_Config_Dropins::OUTDATED => __( 'Installed (an older copy of this plugin\'s)', 'ssm-db-config' ),
			SSM_DB_Config_Dropins::FOREIGN  => __( 'Another plugin\'s file is installed', 'ssm-db-config' ),
		);
		return $labels[ $state ] ?? $state;
	}

	/**
	 * Why drop-ins cannot be installed or removed from the page.
	 *
	 * @param string $refusal dropins_disallowed, file_mods_disallowed, network_admin_only.
	 */
	public static function dropins_refusal( string $refusal ): string {
		$labels = array(
			'dropins_disallowed'   => __( 'SSM_DB_CONFIG_DISALLOW_DROPINS is set in wp-config.php: drop-ins are installed and removed by hand, not from this page.', 'ssm-db-config' ),
			'file_mods_disallowed' => __( 'File changes are disallowed on this site (DISALLOW_FILE_MODS): drop-ins are installed and removed by hand, not from this page.', 'ssm-db-config' ),
			'network_admin_only'   => __( 'Drop-ins run for every site of the network: only a network administrator can install or remove them.', 'ssm-db-config' ),
		);
		return $labels[ $refusal ] ?? $refusal;
	}

	/**
	 * How the site follows a failover.
	 *
	 * @param string $mode retry, error-page, none.
	 */
	public static function failover( string $mode ): string {
		switch ( $mode ) {
			case 'retry':
				return __( 'db.php: when a connection fails or drops, the settings are fetched again and the request reconnects to the server they name; a write whose answer was lost is reported, never run twice.', 'ssm-db-config' );
			case 'error-page':
				return __( 'db-error.php: the failing request answers 503 with Retry-After: 1 after fetching the settings again; the next request uses the new endpoint.', 'ssm-db-config' );
			default:
				return __( 'None: after a failover, WordPress keeps using the cached endpoint until the TTL expires.', 'ssm-db-config' );
		}
	}

	/**
	 * The outcome of an action.
	 *
	 * @param SSM_DB_Config_Action_Result $result Outcome.
	 */
	public static function action( SSM_DB_Config_Action_Result $result ): string {
		$file = (string) ( $result->details['file'] ?? '' );
		switch ( $result->action . ':' . $result->code ) {
			case 'refresh:fetched':
				/* translators: 1: SSM parameter version, 2: milliseconds */
				return sprintf( __( 'Fetched from SSM: parameter version %1$s in %2$s ms.', 'ssm-db-config' ), (string) ( $result->details['version'] ?? '?' ), (string) ( $result->details['duration_ms'] ?? '?' ) );
			case 'refresh:reused':
				/* translators: %s: SSM parameter version */
				return sprintf( __( 'SSM was asked less than a second ago (by this or another PHP process); that answer is in use: parameter version %s.', 'ssm-db-config' ), (string) ( $result->details['version'] ?? '?' ) );
			case 'refresh:failed':
				/* translators: 1: error kind, 2: message */
				return sprintf( __( 'The fetch failed (%1$s): %2$s', 'ssm-db-config' ), (string) ( $result->details['kind'] ?? '' ), (string) ( $result->details['message'] ?? '' ) );
			case 'refresh:not_loaded':
				return __( 'The ssm_db_config extension is not loaded.', 'ssm-db-config' );
			case 'install:installed':
				/* translators: %s: file name */
				return sprintf( __( '%s installed in wp-content.', 'ssm-db-config' ), $file );
			case 'remove:removed':
			case 'remove:absent':
				/* translators: %s: file name */
				return sprintf( __( '%s removed from wp-content.', 'ssm-db-config' ), $file );
			case 'install:foreign':
			case 'remove:foreign':
				/* translators: %s: file name */
				return sprintf( __( 'wp-content/%s belongs to another plugin and was left alone. The db-error.php drop-in works beside it.', 'ssm-db-config' ), $file );
			case 'install:not_writable':
				/* translators: %s: file name */
				return sprintf( __( 'wp-content is not writable by the web server, so %s was not installed. Copy it from the plugin\'s dropins/ folder by hand.', 'ssm-db-config' ), $file );
			default:
				/* translators: %s: file name */
				return sprintf( __( 'Could not write wp-content/%s.', 'ssm-db-config' ), $file );
		}
	}
}
