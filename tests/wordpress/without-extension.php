<?php
/**
 * The plugin in a PHP without the ssm_db_config extension: the admin page says so and how to
 * install it, Site Health reports it, the health endpoints answer 503, and nothing is fatal.
 * Run with plain `php` (no -d extension=...). Prints "ok - " / "not ok - " lines.
 *
 * wp-config.php needs the extension, so this loads WordPress' settings directly with the
 * database constants from the environment (the run's MariaDB A).
 */
$results = array();
function check( string $name, bool $ok ): void {
	echo ( $ok ? 'ok - ' : 'not ok - ' ) . 'without extension: ' . $name . "\n";
}
if ( extension_loaded( 'ssm_db_config' ) ) {
	check( 'runs in a PHP without the extension', false );
	exit( 1 );
}
$wp_dir = getenv( 'WP' );
define( 'ABSPATH', $wp_dir . '/' );
define( 'DB_HOST', '127.0.0.1:' . getenv( 'MA_PORT' ) );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', getenv( 'CANARY' ) );
define( 'DB_NAME', 'wp' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'WP_HOME', getenv( 'WP_URL' ) );
define( 'WP_SITEURL', getenv( 'WP_URL' ) );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'DISABLE_WP_CRON', true );
$table_prefix = 'wp_';
$_SERVER['HTTP_HOST'] = parse_url( getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . parse_url( getenv( 'WP_URL' ), PHP_URL_PORT );
require ABSPATH . 'wp-settings.php';
require_once ABSPATH . 'wp-admin/includes/template.php';

check( 'the plugin loads', class_exists( 'SSM_DB_Config_Collector' ) );
wp_set_current_user( get_user_by( 'login', 'admin' )->ID );
$collector = new SSM_DB_Config_Collector( new SSM_DB_Config_Dropins( WP_CONTENT_DIR ) );

ob_start();
( new SSM_DB_Config_Admin_Page( $collector ) )->render();
$html = (string) ob_get_clean();
check( 'the admin page says the extension is not loaded', str_contains( $html, 'id="ssm-db-config-not-loaded"' ) );
check( 'the admin page says how to install it', str_contains( $html, 'extension=ssm_db_config' ) );
check( 'the admin page offers no refresh', ! str_contains( $html, 'Refresh now' ) );
check( 'the admin page shows no password', ! str_contains( $html, (string) getenv( 'CANARY' ) ) );

$health = new SSM_DB_Config_Site_Health( $collector );
check( 'Site Health: extension test is critical', 'critical' === $health->test_extension()['status'] );
check( 'Site Health: database test is critical', 'critical' === $health->test_database()['status'] );
$info = $health->debug_information( array() );
check( 'Site Health info: loaded = No', 'No' === $info['ssm-db-config']['fields']['loaded']['value'] );

$refresh = $collector->refresh();
check( 'refresh reports not_loaded', ! $refresh->ok && 'not_loaded' === $refresh->code );
$limiter = ( new SSM_DB_Config_Refresh_Limiter() )->refresh();
check( 'the drop-ins\' limiter does nothing', false === $limiter['fetched'] && 'extension_not_loaded' === $limiter['error'] );

// The php CLI puts the environment in $_SERVER: the setting, and the request's header.
$token = 'token-' . bin2hex( random_bytes( 8 ) );
foreach ( array( 'live.php' => 'NOT_LIVE extension_not_loaded', 'db.php' => 'NOT_WRITER extension_not_loaded' ) as $file => $expected ) {
	$command = escapeshellarg( PHP_BINARY ) . ' ' . escapeshellarg( WP_PLUGIN_DIR . '/ssm-db-config/health/' . $file ) . ' 2>&1';
	$out     = (string) shell_exec( 'SSM_DB_CONFIG_HEALTH_TOKEN=' . $token . ' HTTP_X_HEALTH_TOKEN=' . $token . ' ' . $command );
	check( "health/$file answers $expected", trim( $out ) === $expected );
	$out = (string) shell_exec( 'SSM_DB_CONFIG_HEALTH_TOKEN=' . $token . ' ' . $command );
	check( "health/$file without the token answers Not Found", 'Not Found' === trim( $out ) );
}
