<?php
/**
 * Installs WordPress from the command line into the copy at $argv[1] and activates the
 * plugin: what a person would do in the browser's install form. Passwords come from the
 * environment (ADMIN_PASS, SUBSCRIBER_PASS), never from the command line.
 */
if ( PHP_SAPI !== 'cli' ) {
	exit( 1 );
}
define( 'WP_INSTALLING', true );
$_SERVER['HTTP_HOST'] = parse_url( getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . parse_url( getenv( 'WP_URL' ), PHP_URL_PORT );
require $argv[1] . '/wp-load.php';

// wp_install() mails the admin; there is no mail server here.
function wp_new_blog_notification() {}
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

$result = wp_install( 'SSM DB Config test site', 'admin', 'admin@example.invalid', false, '', wp_slash( getenv( 'ADMIN_PASS' ) ) );
if ( empty( $result['user_id'] ) ) {
	fwrite( STDERR, "wp_install failed\n" );
	exit( 1 );
}
$subscriber = wp_insert_user(
	array(
		'user_login' => 'subscriber',
		'user_pass'  => getenv( 'SUBSCRIBER_PASS' ),
		'user_email' => 'subscriber@example.invalid',
		'role'       => 'subscriber',
	)
);
if ( is_wp_error( $subscriber ) ) {
	fwrite( STDERR, 'subscriber: ' . $subscriber->get_error_message() . "\n" );
	exit( 1 );
}
// No Gravatar requests from the browser: traffic stays on 127.0.0.1.
update_option( 'show_avatars', 0 );
// The default theme of this WordPress when it is installed (Debian ships themes in packages of
// their own), else the one that is: a front page with no theme is empty.
$themes = wp_get_themes();
switch_theme( isset( $themes[ WP_DEFAULT_THEME ] ) ? WP_DEFAULT_THEME : (string) array_key_first( $themes ) );
$activated = activate_plugin( 'ssm-db-config/ssm-db-config.php' );
if ( is_wp_error( $activated ) ) {
	fwrite( STDERR, 'activate: ' . $activated->get_error_message() . "\n" );
	exit( 1 );
}
wp_insert_post( array( 'post_title' => 'Failover canary post', 'post_content' => 'served-from-database', 'post_status' => 'publish' ) );
echo "installed\n";
