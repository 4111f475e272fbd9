<?php
/**
 * The db.php drop-in when a connection is lost inside a request (sourced through
 * tests/wordpress/reconnect.sh): statements go through tests/wordpress/mysql_fault_proxy.py,
 * which lets a statement marked /*drop-reply:TOKEN*\/ run on MariaDB A and then resets the
 * connection before its answer arrives. Prints TAP lines ("ok - ...", "not ok - ...").
 *
 * Environment: WP_URL, MOTO_URL, MA_PORT, MB_PORT (read-only), P1_PORT and P2_PORT (two
 * proxies in front of A), CLOSED_PORT. The process's parameter (ssm_db_config.parameter)
 * is /wp/reconnect, which names P1 when it starts.
 */
if ( PHP_SAPI !== 'cli' || $argc < 2 ) {
	exit( 2 );
}
$_SERVER['HTTP_HOST']   = (string) parse_url( (string) getenv( 'WP_URL' ), PHP_URL_HOST ) . ':' . (string) parse_url( (string) getenv( 'WP_URL' ), PHP_URL_PORT );
$_SERVER['REQUEST_URI'] = '/';
require $argv[1] . '/wp-load.php';
if ( ! class_exists( 'SSM_DB_Config_WPDB', false ) ) {
	( static function () {
		require WP_PLUGIN_DIR . '/ssm-db-config/dropins/db.php';
	} )();
}

/**
 * One TAP line.
 *
 * @param bool   $pass Whether the check passed.
 * @param string $name What it checks.
 */
function reconnect_ok( bool $pass, string $name ): void {
	echo ( $pass ? 'ok' : 'not ok' ), ' - reconnect: ', $name, "\n"; // phpcs:ignore WordPress.Security.EscapeOutput
}

/**
 * A wpdb (core's or the drop-in's) whose first connection goes to 127.0.0.1:$port.
 *
 * @param string $class wpdb or SSM_DB_Config_WPDB.
 * @param int    $port  The port.
 */
function reconnect_db( string $class, int $port ): wpdb {
	$db = new $class( DB_USER, DB_PASSWORD, DB_NAME, '127.0.0.1:' . $port );
	$db->suppress_errors();
	return $db;
}

/**
 * Rows with this client id on server A, seen from a connection of its own, once the count
 * reaches $at_least (or 5 s have passed).
 *
 * @param string $id       Client id.
 * @param int    $at_least The count to wait for.
 */
function reconnect_rows( string $id, int $at_least = 0 ): int {
	$deadline = microtime( true ) + 5;
	$link     = mysqli_connect( '127.0.0.1', DB_USER, DB_PASSWORD, DB_NAME, (int) getenv( 'MA_PORT' ) );
	do {
		$result = mysqli_query( $link, "SELECT COUNT(*) FROM reconnect_orders WHERE client_id = '" . mysqli_real_escape_string( $link, $id ) . "'" );
		$count  = (int) mysqli_fetch_row( $result )[0];
		if ( $count >= $at_least ) {
			break;
		}
		usleep( 50000 );
	} while ( microtime( true ) < $deadline );
	mysqli_close( $link );
	return $count;
}

/**
 * Waits until the server has closed this connection (its wait_timeout), seen from another
 * connection of the same user; false after 10 s.
 *
 * @param int $thread The connection's CONNECTION_ID().
 */
function reconnect_wait_closed( int $thread ): bool {
	$deadline = microtime( true ) + 10;
	$link     = mysqli_connect( '127.0.0.1', DB_USER, DB_PASSWORD, DB_NAME, (int) getenv( 'MA_PORT' ) );
	do {
		$result = mysqli_query( $link, 'SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ' . $thread );
		if ( '0' === (string) mysqli_fetch_row( $result )[0] ) {
			mysqli_close( $link );
			return true;
		}
		usleep( 100000 );
	} while ( microtime( true ) < $deadline );
	mysqli_close( $link );
	return false;
}

/**
 * Points /wp/reconnect at a port of 127.0.0.1 in moto (directly: this process's cache keeps
 * the old value until it refreshes).
 *
 * @param int $port The port.
 */
function reconnect_point_at( int $port ): void {
	$url     = 'mysql://' . rawurlencode( DB_USER ) . ':' . rawurlencode( DB_PASSWORD ) . '@127.0.0.1:' . $port . '/' . DB_NAME;
	$context = stream_context_create(
		array(
			'http' => array(
				'method'  => 'POST',
				'header'  => "X-Amz-Target: AmazonSSM.PutParameter\r\nContent-Type: application/x-amz-json-1.1\r\n"
					. "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=x\r\n",
				'content' => json_encode(
					array(
						'Name'      => '/wp/reconnect',
						'Value'     => $url,
						'Type'      => 'SecureString',
						'Overwrite' => true,
					)
				),
				'timeout' => 5,
			),
		)
	);
	if ( false === file_get_contents( getenv( 'MOTO_URL' ) . '/', false, $context ) ) {
		throw new RuntimeException( 'moto did not answer PutParameter' );
	}
}

/**
 * The code of the drop-in's last outcome, or null.
 *
 * @param SSM_DB_Config_WPDB $db The drop-in's wpdb.
 */
function reconnect_code( SSM_DB_Config_WPDB $db ): ?string {
	$outcome = $db->ssm_db_config_outcome();
	return $outcome ? (string) $outcome->get_error_code() : null;
}

$p1     = (int) getenv( 'P1_PORT' );
$p2     = (int) getenv( 'P2_PORT' );
$ma     = (int) getenv( 'MA_PORT' );
$mb     = (int) getenv( 'MB_PORT' );
$closed = (int) getenv( 'CLOSED_PORT' );
$fired  = array();
add_action(
	'ssm_db_config_statement_failed',
	static function ( $code ) use ( &$fired ) {
		$fired[] = $code;
	}
);

// Core's wpdb, the control: the fault is real, and core runs the INSERT a second time.
$core   = reconnect_db( 'wpdb', $p1 );
$result = $core->query( "INSERT INTO reconnect_orders (client_id) VALUES ('core-1') /*drop-reply:core1*/" );
reconnect_ok( 1 === $result && 2 === reconnect_rows( 'core-1', 2 ), 'control: core wpdb runs an INSERT twice when the connection drops after it was sent (' . reconnect_rows( 'core-1' ) . ' rows)' );

// The drop-in: the same INSERT runs once and is reported as of unknown outcome.
$db     = reconnect_db( 'SSM_DB_Config_WPDB', $p1 );
$result = $db->query( "INSERT INTO reconnect_orders (client_id) VALUES ('dropin-1') /*drop-reply:d1*/" );
reconnect_ok( false === $result, 'drop-in: the INSERT whose answer was lost returns false' );
reconnect_ok( 'ssm_db_config_outcome_unknown' === reconnect_code( $db ), 'drop-in: ssm_db_config_outcome() says ssm_db_config_outcome_unknown (' . reconnect_code( $db ) . ')' );
reconnect_ok( str_starts_with( $db->last_error, 'Outcome unknown' ), 'drop-in: last_error says the outcome is unknown' );
reconnect_ok( array( 'ssm_db_config_outcome_unknown' ) === $fired, 'drop-in: the ssm_db_config_statement_failed action fired once' );
reconnect_ok( 1 === reconnect_rows( 'dropin-1', 1 ), 'drop-in: the INSERT ran exactly once (' . reconnect_rows( 'dropin-1' ) . ' rows)' );
reconnect_ok( 1 === $db->insert( 'reconnect_orders', array( 'client_id' => 'dropin-2' ) ) && null === reconnect_code( $db ), 'drop-in: the next INSERT reconnects and succeeds' );
reconnect_ok( '1' === $db->get_var( "SELECT COUNT(*) FROM reconnect_orders WHERE client_id = 'dropin-2' /*drop-reply:d2*/" ) && null === reconnect_code( $db ), 'drop-in: a SELECT whose answer was lost is run once more and answers' );

// A transaction: nothing in it is run again, and what follows is refused until ROLLBACK.
$db->query( 'START TRANSACTION' );
$a      = $db->insert( 'reconnect_orders', array( 'client_id' => 'txn-a' ) );
$b      = $db->query( "INSERT INTO reconnect_orders (client_id) VALUES ('txn-b') /*drop-reply:t1*/" );
$b_code = reconnect_code( $db );
$c      = $db->insert( 'reconnect_orders', array( 'client_id' => 'txn-c' ) );
$c_code = reconnect_code( $db );
$commit = $db->query( 'COMMIT' );
reconnect_ok( 1 === $a && false === $b && 'ssm_db_config_transaction_lost' === $b_code, 'transaction: the statement whose answer was lost fails with ssm_db_config_transaction_lost (' . $b_code . ')' );
reconnect_ok( false === $c && 'ssm_db_config_transaction_lost' === $c_code, 'transaction: the next statement is refused, not run in autocommit' );
reconnect_ok( false === $commit && str_contains( $db->last_error, 'nothing of it was committed' ), 'transaction: COMMIT fails and says nothing was committed' );
reconnect_ok( 0 === reconnect_rows( 'txn-a' ) + reconnect_rows( 'txn-b' ) + reconnect_rows( 'txn-c' ), 'transaction: none of its rows is on the server' );
reconnect_ok( 1 === $db->insert( 'reconnect_orders', array( 'client_id' => 'txn-d' ) ), 'transaction: after COMMIT the connection is usable again' );
$db->query( 'START TRANSACTION' );
$db->query( "INSERT INTO reconnect_orders (client_id) VALUES ('txn-e') /*drop-reply:t2*/" );
reconnect_ok( 0 === $db->query( 'ROLLBACK' ) && 1 === $db->insert( 'reconnect_orders', array( 'client_id' => 'txn-f' ) ) && 0 === reconnect_rows( 'txn-e' ), 'transaction: ROLLBACK after a lost transaction succeeds and ends it' );

// The server closes an idle connection (wait_timeout): found closed before the next write is
// sent, so the write goes to a new connection and runs, once, with no error.
$db->query( 'SET SESSION wait_timeout = 1' );
$closed_ok = reconnect_wait_closed( (int) $db->get_var( 'SELECT CONNECTION_ID()' ) );
$result    = $db->insert( 'reconnect_orders', array( 'client_id' => 'idle-1' ) );
reconnect_ok( $closed_ok && 1 === $result && null === reconnect_code( $db ) && 1 === reconnect_rows( 'idle-1' ), 'idle: a write after the server closed the idle connection runs once on a new one, no error' );
$db->query( 'SET SESSION wait_timeout = 1' );
$db->query( 'START TRANSACTION' );
$db->insert( 'reconnect_orders', array( 'client_id' => 'idle-2' ) );
$closed_ok = reconnect_wait_closed( (int) $db->get_var( 'SELECT CONNECTION_ID()' ) );
$result    = $db->insert( 'reconnect_orders', array( 'client_id' => 'idle-3' ) );
reconnect_ok( $closed_ok && false === $result && 'ssm_db_config_transaction_lost' === reconnect_code( $db ) && str_contains( $db->last_error, 'was not sent' ), 'idle: inside a transaction the write is not sent and the transaction is reported lost' );
reconnect_ok( 0 === $db->query( 'ROLLBACK' ) && 0 === reconnect_rows( 'idle-2' ) + reconnect_rows( 'idle-3' ), 'idle: ROLLBACK ends it; none of its rows is on the server' );

// A reconnect takes what SSM names (P1), not the constructor's host (P2).
$db2 = reconnect_db( 'SSM_DB_Config_WPDB', $p2 );
reconnect_ok( '7' === $db2->get_var( 'SELECT 7 /*drop-reply:s1*/' ) && '127.0.0.1:' . $p1 === $db2->dbhost, 'reconnect: uses the host SSM names, not the one it started with (' . $db2->dbhost . ')' );

// The cached host is unreachable: the drop-in asks SSM again and follows it to A.
reconnect_point_at( $closed );
ssm_db_config_refresh();
reconnect_point_at( $ma );
usleep( 1100000 ); // Past the refresh limit's second.
$db3 = reconnect_db( 'SSM_DB_Config_WPDB', $p2 );
reconnect_ok( '8' === $db3->get_var( 'SELECT 8 /*drop-reply:s2*/' ) && '127.0.0.1:' . $ma === $db3->dbhost, 'reconnect: the cached host refuses, SSM is asked again, the new host answers (' . $db3->dbhost . ')' );
reconnect_ok( ! str_contains( (string) $db3->last_error, DB_PASSWORD ), 'reconnect: no password in the error' );

// A read-only server (B) refuses a write: it certainly did not run, so it runs on A.
usleep( 1100000 );
$db4    = reconnect_db( 'SSM_DB_Config_WPDB', $mb );
$result = $db4->insert( 'reconnect_orders', array( 'client_id' => 'ro-1' ) );
reconnect_ok( 1 === $result && '127.0.0.1:' . $ma === $db4->dbhost && 1 === reconnect_rows( 'ro-1' ), 'read-only: a write refused by a read-only server runs once on the writer SSM names' );
reconnect_point_at( $mb );
usleep( 1100000 );
$db5    = reconnect_db( 'SSM_DB_Config_WPDB', $mb );
$result = $db5->insert( 'reconnect_orders', array( 'client_id' => 'ro-2' ) );
reconnect_ok( false === $result && str_contains( $db5->last_error, 'read-only' ) && null === reconnect_code( $db5 ), 'read-only: when SSM still names the read-only server, its error stands (' . $db5->last_error . ')' );
