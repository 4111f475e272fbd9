<?php
/**
 * Database health endpoint for Route 53 (and anything that must know where the writer is).
 *
 * Requested directly; does not load WordPress, so it answers when WordPress cannot. Closed
 * unless the operator allowed the client (SSM_DB_CONFIG_HEALTH_ALLOW / _TOKEN, see
 * includes/class-health-access.php): anyone else gets a bare 404, and nothing is fetched,
 * probed or written for them. Connects to the database that ssm_db_config() names (engine
 * from DB_ENGINE) and checks that it is a writer: PostgreSQL's pg_is_in_recovery() is false;
 * MySQL/MariaDB's read_only and innodb_read_only are off. A refused login (MySQL 1045,
 * PostgreSQL's authentication failures) asks the extension once for a new password or IAM
 * token (ssm_db_config_refresh()) and tries once more, within the same budget.
 *
 * - 200, body beginning "WRITER_OK" (Route 53 string matching reads the first 5,120 bytes);
 * - 503 with Retry-After and a body "NOT_WRITER <reason>" otherwise;
 * - Cache-Control: no-store; the body names no host, user or password;
 * - the whole check finishes within 1.5 s;
 * - one check per second per host: its result, in the plugin's private state folder, answers
 *   every request of the next second. A request never waits for another worker's check: while
 *   one runs, the others answer from the previous result (up to a minute old), or 503 "busy"
 *   when there is none. X-Health-Cache says which: hit, miss (checked now), stale, busy.
 * - without a usable state folder it answers 503 "state_unavailable" and checks nothing:
 *   otherwise every request would open a database connection.
 *
 * @package SsmDbConfig
 */

// Until an answer is chosen, whatever ends this script (a fatal error, a missing PHP
// extension) must not read as healthy to a load balancer.
http_response_code( 503 );
define( 'SSM_DB_CONFIG_STANDALONE', true );
require_once dirname( __DIR__ ) . '/includes/class-health-access.php';
SSM_DB_Config_Health_Access::enforce();
require_once dirname( __DIR__ ) . '/includes/class-state-dir.php';
require_once dirname( __DIR__ ) . '/includes/class-db-probe.php';

( static function () {
	$budget = 1.5;   // Seconds for the whole answer.
	$share  = 1.0;   // Seconds a result answers every request.
	$stale  = 60.0;  // Seconds a previous result may answer while another worker checks.
	$start  = microtime( true );
	// Leave a margin for PHP to send the answer.
	$deadline = $start + $budget - 0.1;

	header( 'Cache-Control: no-store' );
	header( 'Content-Type: text/plain; charset=utf-8' );

	$respond = static function ( bool $writer, string $reason, string $cache ) {
		header( 'X-Health-Cache: ' . $cache );
		if ( $writer ) {
			http_response_code( 200 );
			echo "WRITER_OK\n";
			return;
		}
		http_response_code( 503 );
		header( 'Retry-After: 1' );
		echo 'NOT_WRITER ' . $reason . "\n"; // phpcs:ignore WordPress.Security.EscapeOutput -- a fixed code, text/plain.
	};
	$from = static function ( array $result, string $cache ) use ( $respond ) {
		$respond( ! empty( $result['writer'] ), (string) ( $result['reason'] ?? 'unknown' ), $cache );
	};
	$age = static fn( ?array $result ) => null === $result ? INF : microtime( true ) - (float) ( $result['time'] ?? 0 );

	if ( ! function_exists( 'ssm_db_config' ) ) {
		$respond( false, 'extension_not_loaded', 'none' );
		return;
	}

	$dir = SSM_DB_Config_State_Dir::open( null, $why );
	if ( null === $dir ) {
		error_log( 'ssm-db-config health endpoint: no state folder, so no check: ' . $why ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
		$respond( false, 'state_unavailable', 'none' );
		return;
	}
	$name   = 'health-' . md5( (string) ini_get( 'ssm_db_config.parameter' ) );
	$file   = $dir . '/' . $name . '.json';
	$last   = SSM_DB_Config_State_Dir::read( $file );
	$last_age = $age( $last );
	if ( $last_age >= 0 && $last_age < $share ) {
		$from( $last, 'hit' );
		return;
	}

	// One checker per host; everyone else answers at once.
	$lock = @fopen( $dir . '/' . $name . '.lock', 'c' ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
	if ( false === $lock || ! flock( $lock, LOCK_EX | LOCK_NB ) ) {
		if ( false !== $lock ) {
			fclose( $lock ); // phpcs:ignore WordPress.WP.AlternativeFunctions
		}
		if ( $last_age >= 0 && $last_age < $stale ) {
			$from( $last, 'stale' );
		} else {
			$respond( false, false === $lock ? 'state_unavailable' : 'busy', 'busy' );
		}
		return;
	}
	try {
		// Another worker may have finished a check between the read above and the lock.
		$last     = SSM_DB_Config_State_Dir::read( $file );
		$last_age = $age( $last );
		if ( $last_age >= 0 && $last_age < $share ) {
			$from( $last, 'hit' );
			return;
		}
		try {
			// A refused login asks the extension once for a new password or IAM token and tries again.
			$result = ( new SSM_DB_Config_Db_Probe() )->check_configured( $deadline );
			$writer = $result->writer;
			$reason = $result->reason;
		} catch ( \Throwable $e ) {
			$writer = false;
			$reason = SSM_DB_Config_Probe_Result::CONFIG_UNAVAILABLE;
		}
		if ( microtime( true ) > $start + $budget ) {
			$writer = false;
			$reason = SSM_DB_Config_Probe_Result::TIMEOUT;
		}
		SSM_DB_Config_State_Dir::write( $file, array( 'time' => microtime( true ), 'writer' => $writer, 'reason' => $reason ) );
		$respond( $writer, $reason, 'miss' );
	} finally {
		flock( $lock, LOCK_UN );
		fclose( $lock ); // phpcs:ignore WordPress.WP.AlternativeFunctions
	}
} )();
