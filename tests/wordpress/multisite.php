<?php
/**
 * The admin page on a multisite network: a site administrator can neither install nor remove
 * the drop-ins (they run for every site) nor see the network's database host and user; a
 * network administrator can. Run by tests/suites/wordpress.sh with the extension loaded, in two
 * processes (WordPress cannot turn into a network within one):
 *
 *     php multisite.php install DIR   installs a single site in DIR (tables wpms_), makes it a
 *                                     network, and writes DIR/wp-config.php for it
 *     php multisite.php test DIR      loads the network and prints "ok - " / "not ok - " lines
 *
 * DIR is a copy of the test WordPress; its wp-config.php is rewritten (table prefix wpms_ in the
 * same database; host ms.example, which nothing resolves: no request leaves this process).
 */
if ( PHP_SAPI !== 'cli' || count( $argv ) !== 3 ) {
	exit( 1 );
}
list( , $phase, $dir ) = $argv;
const SSM_MS_DOMAIN = 'ms.example';
$_SERVER['HTTP_HOST']   = SSM_MS_DOMAIN;
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = SSM_MS_DOMAIN;

function ssm_ms_config( string $dir, bool $network ): void {
	$config = (string) file_get_contents( $dir . '/wp-config.php' );
	$config = preg_replace( "/^\\\$table_prefix = .*$/m", "\$table_prefix = 'wpms_';", $config );
	$config = preg_replace( "/^define\\( 'WP_(HOME|SITEURL)'.*$/m", '', $config );
	$config = str_replace( "/* multisite */\n", '', $config );
	$lines  = "define( 'WP_ALLOW_MULTISITE', true );\n";
	if ( $network ) {
		$lines .= "define( 'MULTISITE', true );\ndefine( 'SUBDOMAIN_INSTALL', false );\ndefine( 'DOMAIN_CURRENT_SITE', '" . SSM_MS_DOMAIN . "' );\n"
			. "define( 'PATH_CURRENT_SITE', '/' );\ndefine( 'SITE_ID_CURRENT_SITE', 1 );\ndefine( 'BLOG_ID_CURRENT_SITE', 1 );\n";
	}
	$config = preg_replace( "/(^define\\( 'WP_ALLOW_MULTISITE'.*\n)(^define\\( '(MULTISITE|SUBDOMAIN_INSTALL|DOMAIN_CURRENT_SITE|PATH_CURRENT_SITE|SITE_ID_CURRENT_SITE|BLOG_ID_CURRENT_SITE)'.*\n)*/m", '', $config );
	$config = str_replace( "if ( ! defined( 'ABSPATH' ) ) {", $lines . "if ( ! defined( 'ABSPATH' ) ) {", $config );
	file_put_contents( $dir . '/wp-config.php', $config );
}

if ( 'install' === $phase ) {
	ssm_ms_config( $dir, false );
	define( 'WP_INSTALLING', true );
	require $dir . '/wp-load.php';
	global $wpdb;
	function wp_new_blog_notification() {}
	require_once ABSPATH . 'wp-admin/includes/upgrade.php';
	require_once ABSPATH . 'wp-admin/includes/plugin.php';
	$result = wp_install( 'SSM DB Config network', 'admin', 'admin@example.invalid', false, '', wp_slash( (string) getenv( 'ADMIN_PASS' ) ) );
	if ( empty( $result['user_id'] ) ) {
		fwrite( STDERR, "wp_install failed\n" );
		exit( 1 );
	}
	wp_set_current_user( $result['user_id'] );
	require_once ABSPATH . 'wp-admin/includes/network.php';
	// What wp-admin/network.php does before it creates the network's tables.
	foreach ( $wpdb->tables( 'ms_global' ) as $table => $prefixed_table ) {
		$wpdb->$table = $prefixed_table;
	}
	install_network();
	$network = populate_network( 1, SSM_MS_DOMAIN, 'admin@example.invalid', 'SSM DB Config network', '/', false );
	if ( is_wp_error( $network ) ) {
		fwrite( STDERR, 'populate_network: ' . $network->get_error_message() . "\n" );
		exit( 1 );
	}
	ssm_ms_config( $dir, true );
	echo "installed\n";
	exit( 0 );
}

// --- test ---
require $dir . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
require_once ABSPATH . 'wp-admin/includes/template.php';
function check( string $name, bool $ok ): void {
	echo ( $ok ? 'ok - ' : 'not ok - ' ) . 'multisite: ' . $name . "\n";
}
check( 'WordPress runs as a network', is_multisite() );
$activated = activate_plugin( 'ssm-db-config/ssm-db-config.php' );
check( 'the plugin activates on the main site', ! is_wp_error( $activated ) );
do_action( 'plugins_loaded' );

$site_admin = wp_insert_user( array( 'user_login' => 'siteadmin', 'user_pass' => wp_generate_password(), 'user_email' => 'siteadmin@example.invalid', 'role' => 'administrator' ) );
check( 'a site administrator exists', is_int( $site_admin ) && ! is_super_admin( $site_admin ) );
$network_admin = get_user_by( 'login', 'admin' );
check( 'the installer is a network administrator', $network_admin && is_super_admin( $network_admin->ID ) );

final class SSM_MS_Die extends RuntimeException {
}
add_filter( 'wp_die_handler', static fn() => static function ( $message, $title = '', $args = array() ) {
	throw new SSM_MS_Die( is_string( $message ) ? $message : 'wp_die', is_array( $args ) && isset( $args['response'] ) ? (int) $args['response'] : 500 );
} );

$content = sys_get_temp_dir() . '/ssm-db-config-ms-' . bin2hex( random_bytes( 6 ) );
mkdir( $content );
$page = new SSM_DB_Config_Admin_Page( new SSM_DB_Config_Collector( new SSM_DB_Config_Dropins( $content ) ) );
$render = static function () use ( $page ): string {
	ob_start();
	try {
		$page->render();
	} finally {
		$html = (string) ob_get_clean();
	}
	return $html;
};
$install = static function () use ( $page ): int {
	$_SERVER['REQUEST_METHOD'] = 'POST';
	$_POST = array(
		'ssm_db_config_action' => 'install',
		'dropin'               => 'db.php',
		'_wpnonce'             => wp_create_nonce( SSM_DB_Config_Admin_Page::nonce_action( 'install', 'db.php' ) ),
	);
	$_REQUEST = $_POST;
	try {
		$page->handle_action();
		return 200;
	} catch ( SSM_MS_Die $e ) {
		return $e->getCode();
	}
};

wp_set_current_user( $site_admin );
check( 'a site administrator may open the page (manage_options)', current_user_can( 'manage_options' ) );
check( 'a site administrator is refused installing db.php (403)', 403 === $install() );
check( '... and no db.php is written', ! file_exists( $content . '/db.php' ) );
$html = $render();
check( 'the page tells a site administrator that drop-ins are for network administrators', str_contains( $html, 'data-refusal="network_admin_only"' ) );
check( 'the page offers a site administrator no install button', ! str_contains( $html, 'value="install"' ) );
check( 'the page shows a site administrator no database host or user', ! str_contains( $html, 'data-field="host"' ) && ! str_contains( $html, esc_html( DB_HOST ) ) && str_contains( $html, 'data-field="identity-hidden"' ) );

wp_set_current_user( $network_admin->ID );
check( 'a network administrator installs db.php', 200 === $install() && file_exists( $content . '/db.php' ) );
$html = $render();
check( 'the page shows a network administrator the database host', str_contains( $html, 'data-field="host"' ) && str_contains( $html, esc_html( DB_HOST ) ) );
check( 'the page shows a network administrator no password', ! str_contains( $html, (string) getenv( 'CANARY' ) ) );

@unlink( $content . '/db.php' );
@rmdir( $content );
