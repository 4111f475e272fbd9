<?php
/**
 * Database health endpoint for Route 53 (and anything that must know where the writer is).
 *
 * Requested directly; does not load WordPress, so it answers when WordPress cannot. Connects
 * to the database that ssm_db_config() names (engine from DB_ENGINE) and checks that it is a
 * writer: PostgreSQL's pg_is_in_recovery() is false; MySQL/MariaDB's read_only and
 * innodb_read_only are off.
 *
 * - 200, body beginning "WRITER_OK" (Route 53 string matching reads the first 5,120 bytes);
 * - 503 with Retry-After and a body "NOT_WRITER <reason>" otherwise;
 * - Cache-Control: no-store; the body names no host, user or password;
 * - the whole check finishes within 1.5 s;
 * - the result is shared for 1 s by every worker on this host (Route 53's checkers arrive
 *   in bursts from many regions): the first request in a second checks, the others wait for
 *   it on a lock and reuse its answer. X-Health-Cache says which happened.
 *
 * @package SsmDbConfig
 */

define( 'SSM_DB_CONFIG_STANDALONE', true );
require_once dirname( __DIR__ ) . '/includes/class-db-probe.php';

( static function () {
	$budget = 1.5;   // Seconds for the whole answer.
	$share  = 1.0;   // Seconds a result is reused.
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

	if ( ! function_exists( 'ssm_db_config' ) ) {
		$respond( false, 'extension_not_loaded', 'none' );
		return;
	}

	$uid    = function_exists( 'posix_geteuid' ) ? posix_geteuid() : getmyuid();
	$file   = sys_get_temp_dir() . '/ssm-db-config-health-' . $uid . '-' . md5( (string) ini_get( 'ssm_db_config.parameter' ) ) . '.json';
	$handle = @fopen( $file, 'c+' ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
	if ( false !== $handle ) {
		// Wait for the worker that is checking right now, but never past the deadline.
		while ( ! flock( $handle, LOCK_EX | LOCK_NB ) ) {
			if ( microtime( true ) >= $deadline ) {
				fclose( $handle ); // phpcs:ignore WordPress.WP.AlternativeFunctions
				$respond( false, 'timeout', 'busy' );
				return;
			}
			usleep( 10000 );
		}
		$shared = json_decode( (string) stream_get_contents( $handle, -1, 0 ), true );
		$age    = is_array( $shared ) ? microtime( true ) - (float) ( $shared['time'] ?? 0 ) : INF;
		if ( $age >= 0 && $age < $share ) {
			flock( $handle, LOCK_UN );
			fclose( $handle ); // phpcs:ignore WordPress.WP.AlternativeFunctions
			$respond( ! empty( $shared['writer'] ), (string) ( $shared['reason'] ?? 'unknown' ), 'hit' );
			return;
		}
	}

	try {
		$config = ssm_db_config();
		$status = ssm_db_config_status();
		$result = ( new SSM_DB_Config_Db_Probe() )->check( $config, $deadline, (array) ( $status['options'] ?? array() ) );
		unset( $config );
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

	if ( false !== $handle ) {
		ftruncate( $handle, 0 );
		rewind( $handle );
		fwrite( $handle, (string) json_encode( array( 'time' => microtime( true ), 'writer' => $writer, 'reason' => $reason ) ) ); // phpcs:ignore WordPress.WP.AlternativeFunctions
		fflush( $handle );
		flock( $handle, LOCK_UN );
		fclose( $handle ); // phpcs:ignore WordPress.WP.AlternativeFunctions
	}
	$respond( $writer, $reason, 'miss' );
} )();
