<?php
/**
 * Liveness endpoint for a load balancer's target health check (ALB, nginx upstream checks).
 *
 * Requested directly; does not load WordPress. Checks only this host: the ssm_db_config
 * extension is loaded and has database settings (cached, or fetched now). It does NOT touch
 * the database: when the database is down every target would fail, an ALB then fails open
 * and an auto-scaling group replaces hosts that are healthy. Use db.php for Route 53.
 *
 * 200 "LIVE_OK"; 503 "NOT_LIVE <reason>" with Retry-After. The body names no host, user or
 * password.
 *
 * @package SsmDbConfig
 */

define( 'SSM_DB_CONFIG_STANDALONE', true );

header( 'Cache-Control: no-store' );
header( 'Content-Type: text/plain; charset=utf-8' );

$ssm_db_config_reason = null;
if ( ! function_exists( 'ssm_db_config' ) ) {
	$ssm_db_config_reason = 'extension_not_loaded';
} else {
	try {
		ssm_db_config();
	} catch ( \Throwable $e ) {
		// A value this process still holds (served stale while SSM is unreachable) is enough.
		$ssm_db_config_status = ssm_db_config_status();
		if ( empty( $ssm_db_config_status['cached'] ) ) {
			$ssm_db_config_reason = 'config_unavailable';
		}
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
