<?php
/**
 * Liveness endpoint for a load balancer's target health check (ALB, nginx upstream checks).
 *
 * Requested directly; does not load WordPress. Closed unless the operator allowed the client
 * (SSM_DB_CONFIG_HEALTH_ALLOW / _TOKEN, see includes/class-health-access.php): anyone else gets
 * a bare 404. Checks only this host: the ssm_db_config extension is loaded and has database
 * settings it may serve (cached, stale within ssm_db_config.max_stale while SSM fails, or
 * fetched now). It does NOT touch the database: when the database is down every target would
 * fail, an ALB then fails open and an auto-scaling group replaces hosts that are healthy. Use
 * db.php for Route 53.
 *
 * 200 "LIVE_OK"; 503 "NOT_LIVE <reason>" with Retry-After, reason one of extension_not_loaded,
 * config_too_old (the last value is past max_stale and SSM cannot give a new one: every page
 * of this host fails), config_unavailable. The body names no host, user or password.
 *
 * @package SsmDbConfig
 */

// Until an answer is chosen, whatever ends this script (a fatal error, a missing PHP
// extension) must not read as healthy to a load balancer.
http_response_code( 503 );
define( 'SSM_DB_CONFIG_STANDALONE', true );
require_once dirname( __DIR__ ) . '/includes/class-health-access.php';
SSM_DB_Config_Health_Access::enforce();

header( 'Cache-Control: no-store' );
header( 'Content-Type: text/plain; charset=utf-8' );

$ssm_db_config_reason = null;
if ( ! function_exists( 'ssm_db_config' ) ) {
	$ssm_db_config_reason = 'extension_not_loaded';
} else {
	try {
		// Serves what WordPress would get: fresh, or stale within max_stale while SSM fails.
		ssm_db_config();
	} catch ( \Throwable $e ) {
		// Nothing servable. A value that is still held but past max_stale says so apart from
		// never having had one.
		$ssm_db_config_status = ssm_db_config_status();
		$ssm_db_config_reason = 'too_old' === ( $ssm_db_config_status['state'] ?? null ) ? 'config_too_old' : 'config_unavailable';
	}
}

if ( null === $ssm_db_config_reason ) {
	http_response_code( 200 );
	echo "LIVE_OK\n";
} else {
	http_response_code( 503 );
	header( 'Retry-After: 5' );
	echo 'NOT_LIVE ' . $ssm_db_config_reason . "\n"; // phpcs:ignore WordPress.Security.EscapeOutput -- a fixed code, text/plain.
}
