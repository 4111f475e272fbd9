<?php
/**
 * Loads the test site's real WordPress (its wp-config.php takes the database settings from
 * SSM through the extension), with the plugin active. wp_die() throws instead of exiting so
 * that tests can see refusals.
 */
if ( ! extension_loaded( 'ssm_db_config' ) ) {
	fwrite( STDERR, "The ssm_db_config extension is not loaded (php -d extension=...).\n" );
	exit( 1 );
}
$wp_dir = getenv( 'WP' );
if ( ! $wp_dir || ! is_file( $wp_dir . '/wp-load.php' ) ) {
	fwrite( STDERR, "WP must name the test WordPress folder.\n" );
	exit( 1 );
}
$_SERVER['HTTP_HOST']   = parse_url( (string) getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . parse_url( (string) getenv( 'WP_URL' ), PHP_URL_PORT );
$_SERVER['REQUEST_URI'] = '/';
require $wp_dir . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
if ( ! is_plugin_active( 'ssm-db-config/ssm-db-config.php' ) || ! class_exists( 'SSM_DB_Config_Collector' ) ) {
	fwrite( STDERR, "The plugin is not active in the test site.\n" );
	exit( 1 );
}

/** What wp_die() throws during tests. */
final class WPDieException extends RuntimeException {
}
add_filter(
	'wp_die_handler',
	static function () {
		return static function ( $message, $title = '', $args = array() ) {
			$code = is_array( $args ) && isset( $args['response'] ) ? (int) $args['response'] : 500;
			throw new WPDieException( is_string( $message ) ? $message : 'wp_die', $code );
		};
	}
);
add_filter( 'wp_die_ajax_handler', static fn() => apply_filters( 'wp_die_handler', '' ) );

define( 'SSM_DB_CONFIG_LIMITER_FILE', WP_PLUGIN_DIR . '/ssm-db-config/includes/class-refresh-limiter.php' );
require_once __DIR__ . '/TestCase.php';
