<?php
/**
 * A long WordPress request for bench/wp_drill.py: inserts orders into wp_drill_orders through
 * $wpdb (so through the db.php drop-in), one after another, each with a client-side id, for
 * $argv[2] seconds, in one PHP process. Prints one JSON line per outcome:
 *
 * - written: the INSERT returned 1;
 * - unknown: the drop-in said the outcome is unknown (ssm_db_config_outcome_unknown): the
 *   order is not repeated (a real shop would look it up by its id later);
 * - failed: the statement certainly did not run (no connection could be made, or the server
 *   refused it): repeated with the same id 50 ms later.
 *
 * Usage: php -d extension=... long-request.php WORDPRESS_DIR SECONDS
 */
if ( PHP_SAPI !== 'cli' || $argc < 3 ) {
	exit( 2 );
}
$_SERVER['HTTP_HOST']   = (string) parse_url( (string) getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . (string) parse_url( (string) getenv( 'WP_URL' ), PHP_URL_PORT );
$_SERVER['REQUEST_URI'] = '/';
require $argv[1] . '/wp-load.php';

if ( ! method_exists( $wpdb, 'ssm_db_config_outcome' ) ) {
	fwrite( STDERR, "the db.php drop-in is not in use\n" );
	exit( 1 );
}
$until = microtime( true ) + (float) $argv[2];
$table = $wpdb->prefix . 'drill_orders';
$n     = 0;
while ( microtime( true ) < $until ) {
	$id     = 'o-' . $n;
	$result = $wpdb->insert(
		$table,
		array(
			'client_id' => $id,
			'amount'    => 1,
		)
	);
	$line   = array(
		't'    => microtime( true ),
		'id'   => $id,
		'host' => $wpdb->dbhost,
	);
	if ( 1 === $result ) {
		$line['result'] = 'written';
		++$n;
	} else {
		$outcome = $wpdb->ssm_db_config_outcome();
		$code    = $outcome ? $outcome->get_error_code() : 'server_error';
		if ( 'ssm_db_config_outcome_unknown' === $code ) {
			$line['result'] = 'unknown';
			++$n;
		} else {
			$line['result'] = 'failed';
			$line['code']   = $code;
			$line['error']  = substr( $wpdb->last_error, 0, 120 );
			usleep( 50000 );
		}
	}
	echo json_encode( $line ), "\n"; // phpcs:ignore WordPress.Security.EscapeOutput -- JSON for the drill.
}
