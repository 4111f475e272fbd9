<?php
/**
 * SSM DB Config drop-in: db-error.php
 *
 * WordPress includes this file when it cannot connect to its database. During a failover that
 * means the endpoint cached from SSM points at the old server: ask SSM again (rate-limited to
 * one fetch per second per host, shared by all workers), then answer 503 with Retry-After: 1
 * so that the next request uses the new endpoint. Works beside any db.php (PG4WP, HyperDB,
 * Query Monitor), because it only runs after the connection has failed.
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
		( new SSM_DB_Config_Refresh_Limiter() )->refresh();
	}
} )();

if ( ! headers_sent() ) {
	http_response_code( 503 );
	header( 'Retry-After: 1' );
	header( 'Cache-Control: no-store' );
	header( 'Content-Type: text/html; charset=utf-8' );
}
?>
<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Database unavailable</title></head>
<body>
<h1>The database is briefly unavailable</h1>
<p>This site is switching to another database server. Please try again in a moment.</p>
</body>
</html>
