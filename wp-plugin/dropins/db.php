<?php
/**
 * SSM DB Config drop-in: db.php
 *
 * For sites that have no other db.php. When the first connection of a request fails, the
 * database endpoint may have moved (a failover, a rotated password): ask SSM again, through
 * the shared rate limit of one fetch per second per host, and connect once more with what it
 * returns, within the same request. Only the connection is retried: this class leaves
 * statements alone, so nothing that may already have run is run twice. (wpdb itself re-runs a
 * statement after a reconnect on errno 2006; that path is core's and does not refresh here.)
 *
 * Installed from Tools → Database Config; removed when the plugin is deleted.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

( static function () {
	$plugin_dir = defined( 'SSM_DB_CONFIG_PLUGIN_DIR' )
		? SSM_DB_CONFIG_PLUGIN_DIR
		: ( defined( 'WP_PLUGIN_DIR' ) ? WP_PLUGIN_DIR : WP_CONTENT_DIR . '/plugins' ) . '/ssm-db-config';
	if ( is_readable( $plugin_dir . '/includes/class-refresh-limiter.php' ) ) {
		require_once $plugin_dir . '/includes/class-refresh-limiter.php';
	}
} )();

/**
 * wpdb that refreshes its settings from SSM once when its first connection fails.
 */
class SSM_DB_Config_WPDB extends wpdb {
	/**
	 * Whether the first connection attempt has been made; later reconnects are core's.
	 *
	 * @var bool
	 */
	private $ssm_db_config_first_done = false;

	/**
	 * Connects; on the first failure, refreshes from SSM and tries once more.
	 *
	 * @param bool $allow_bail Whether to show the database error page on failure.
	 * @return bool
	 */
	public function db_connect( $allow_bail = true ) {
		if ( $this->ssm_db_config_first_done || ! class_exists( 'SSM_DB_Config_Refresh_Limiter', false ) ) {
			return parent::db_connect( $allow_bail );
		}
		$this->ssm_db_config_first_done = true;
		if ( parent::db_connect( false ) ) {
			return true;
		}
		$outcome = ( new SSM_DB_Config_Refresh_Limiter() )->refresh();
		if ( is_array( $outcome['config'] ) ) {
			$this->dbhost     = $outcome['config']['DB_HOST'];
			$this->dbuser     = $outcome['config']['DB_USER'];
			$this->dbpassword = $outcome['config']['DB_PASSWORD'];
			$this->dbname     = $outcome['config']['DB_NAME'];
		}
		return parent::db_connect( $allow_bail );
	}
}

$wpdb = new SSM_DB_Config_WPDB( DB_USER, DB_PASSWORD, DB_NAME, DB_HOST ); // phpcs:ignore WordPress.WP.GlobalVariablesOverride -- this is what a db.php drop-in is for.
