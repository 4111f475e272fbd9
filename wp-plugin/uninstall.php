<?php
/**
 * Removes what the plugin stored: its option, and the drop-ins it installed (only ours,
 * recognised by their marker; another plugin's db.php stays).
 *
 * @package SsmDbConfig
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;
defined( 'ABSPATH' ) || exit;

require_once __DIR__ . '/includes/class-dropins.php';

$ssm_db_config_dropins = new SSM_DB_Config_Dropins( WP_CONTENT_DIR );
foreach ( SSM_DB_Config_Dropins::NAMES as $ssm_db_config_name ) {
	$ssm_db_config_dropins->remove( $ssm_db_config_name );
}
delete_option( 'ssm_db_config_installed_dropins' );
if ( is_multisite() ) {
	delete_site_option( 'ssm_db_config_installed_dropins' );
}

// The rate limiter's and the health endpoints' state files hold no secret; remove ours anyway
// (in the private state folder, and where older versions kept them).
require_once __DIR__ . '/includes/class-state-dir.php';
$ssm_db_config_state = SSM_DB_Config_State_Dir::open();
if ( null !== $ssm_db_config_state ) {
	foreach ( (array) glob( $ssm_db_config_state . '/{refresh,health}-*.{json,lock}', GLOB_BRACE ) as $ssm_db_config_file ) {
		@unlink( (string) $ssm_db_config_file ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
	}
	@rmdir( $ssm_db_config_state ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions -- only when empty: the health endpoints may use it.
}
foreach ( (array) glob( sys_get_temp_dir() . '/ssm-db-config-{refresh,health}-*.json', GLOB_BRACE ) as $ssm_db_config_file ) {
	if ( is_string( $ssm_db_config_file ) && is_writable( $ssm_db_config_file ) ) { // phpcs:ignore WordPress.WP.AlternativeFunctions
		@unlink( $ssm_db_config_file ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
	}
}
