<?php
/**
 * Plain data objects: what the collector found, for templates and Site Health to print.
 * No logic beyond construction, no WordPress calls, never a password.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

/**
 * The extension's state in this PHP process.
 */
final class SSM_DB_Config_Extension_State {
	/**
	 * @param bool        $loaded     extension_loaded('ssm_db_config').
	 * @param string|null $version    Extension version.
	 * @param array       $status     ssm_db_config_status() (it holds no secret), or empty.
	 * @param bool        $fresh      The cached value is within its TTL.
	 * @param string      $freshness  Code: fresh, stale, not_cached, failing, not_loaded.
	 */
	public function __construct(
		public readonly bool $loaded,
		public readonly ?string $version,
		public readonly array $status,
		public readonly bool $fresh,
		public readonly string $freshness
	) {
	}
}

/**
 * The result of an action taken on the admin page.
 */
final class SSM_DB_Config_Action_Result {
	/**
	 * @param string $action  refresh, install, remove.
	 * @param bool   $ok      It worked.
	 * @param string $code    Stable code (fetched, installed, foreign, not_writable, ...).
	 * @param array  $details Values to show (version, duration_ms, error kind, file name); no secret.
	 */
	public function __construct(
		public readonly string $action,
		public readonly bool $ok,
		public readonly string $code,
		public readonly array $details = array()
	) {
	}
}

/**
 * Everything the admin page shows.
 */
final class SSM_DB_Config_Report {
	/**
	 * @param SSM_DB_Config_Extension_State   $extension    Extension state.
	 * @param array                           $database     engine, host, user, name in use by WordPress (no password).
	 * @param SSM_DB_Config_Probe_Result|null $connectivity Live check, or null when not run.
	 * @param array<string, string>           $dropins      Drop-in name => state.
	 * @param string                          $failover     retry, error-page or none.
	 * @param bool                            $writable     wp-content is writable.
	 * @param SSM_DB_Config_Action_Result|null $action      The action just taken, if any.
	 */
	public function __construct(
		public readonly SSM_DB_Config_Extension_State $extension,
		public readonly array $database,
		public readonly ?SSM_DB_Config_Probe_Result $connectivity,
		public readonly array $dropins,
		public readonly string $failover,
		public readonly bool $writable,
		public readonly ?SSM_DB_Config_Action_Result $action = null
	) {
	}
}
