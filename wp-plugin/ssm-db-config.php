<?php
/**
 * Plugin Name:       SSM DB Config
 * Description:       Shows where WordPress gets its database settings from (AWS SSM Parameter Store, through the ssm_db_config PHP extension), checks the database from Site Health, and installs drop-ins that follow a database failover.
 * Version:           0.1.0
 * Requires PHP:      8.2
 * Requires at least: 6.1
 * License:           Apache-2.0
 * Text Domain:       ssm-db-config
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

define( 'SSM_DB_CONFIG_PLUGIN_FILE', __FILE__ );
define( 'SSM_DB_CONFIG_PLUGIN_VERSION', '0.1.0' );

/*
 * Layout (collect, model, render, as Query Monitor does):
 * - includes/class-db-probe.php        connects to the database and asks whether it is a writer
 *                                      (shared with the standalone health endpoints; no WordPress in it)
 * - includes/class-refresh-limiter.php the drop-ins' refresh: never waits, one SSM fetch per second per host
 *                                      (shared with the drop-ins; no WordPress in it)
 * - includes/class-health-access.php   who may ask the health endpoints (no WordPress in it)
 * - includes/class-state-dir.php       the private folder of the limiter's and endpoints' state files
 * - includes/class-dropins.php         which db.php / db-error.php are installed; installs ours
 * - includes/class-collector.php       gathers everything the page and Site Health show
 * - includes/class-report.php          the plain data objects the collector returns
 * - includes/class-labels.php          translated words for the report's codes
 * - includes/class-admin-page.php      Tools → Database Config: actions (nonce, then capability) and rendering
 * - includes/class-site-health.php     Site Health tests (direct and async over REST) and debug information
 * - templates/admin-page.php           prints a report; no logic
 * - dropins/                           db.php and db-error.php, copied into wp-content on request
 * - health/                            live.php and db.php for load balancers; they do not load WordPress
 */
require_once __DIR__ . '/includes/class-db-probe.php';
require_once __DIR__ . '/includes/class-refresh-limiter.php';
require_once __DIR__ . '/includes/class-dropins.php';
require_once __DIR__ . '/includes/class-report.php';
require_once __DIR__ . '/includes/class-labels.php';
require_once __DIR__ . '/includes/class-collector.php';
require_once __DIR__ . '/includes/class-admin-page.php';
require_once __DIR__ . '/includes/class-site-health.php';

add_action(
	'plugins_loaded',
	static function () {
		$collector = new SSM_DB_Config_Collector( new SSM_DB_Config_Dropins( WP_CONTENT_DIR ) );
		( new SSM_DB_Config_Admin_Page( $collector ) )->register();
		( new SSM_DB_Config_Site_Health( $collector ) )->register();
	}
);
