<?php
/**
 * What the db.php drop-in does when a statement meets a lost connection or a read-only server:
 * pure functions of the statement's text, the MySQL error number and whether a transaction is
 * open. The drop-in only carries the answer out (docs/failover.md has the table in prose).
 *
 * The rule: a statement is run a second time only when running it twice cannot change data
 * twice. A connection lost after the statement was sent (MySQL 2006, 2013) leaves its outcome
 * unknown: an INSERT may have committed. So only plain reads are re-run after a loss; a write
 * is reported as of unknown outcome and never re-run. A statement a read-only server refused
 * (1290, 1836) certainly did not run, so it may be re-run once on the writer SSM names now.
 * Inside a transaction nothing is re-run: a reconnect starts a new session, the server has
 * rolled the transaction back, and re-running its last statement alone would commit part of it.
 *
 * Used by the drop-in before WordPress has loaded its functions, so it uses none.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || defined( 'SSM_DB_CONFIG_STANDALONE' ) || exit;

/**
 * Statement classes, error kinds, actions, and the decision between them.
 */
final class SSM_DB_Config_Reconnect_Policy {
	/** A plain read: SELECT, SHOW, DESCRIBE, EXPLAIN (not EXPLAIN ANALYZE), without a locking clause. */
	const READ = 'read';
	/** SELECT ... FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE: its locks belong to a transaction. */
	const LOCKING_READ = 'locking_read';
	/** START TRANSACTION, BEGIN. */
	const BEGIN = 'begin';
	/** SET autocommit = 0: from now on every statement is inside a transaction. */
	const AUTOCOMMIT_OFF = 'autocommit_off';
	/** SET autocommit = 1: commits the open transaction. */
	const AUTOCOMMIT_ON = 'autocommit_on';
	/** COMMIT. */
	const COMMIT = 'commit';
	/** ROLLBACK (not ROLLBACK TO SAVEPOINT, which is a write inside the transaction). */
	const ROLLBACK = 'rollback';
	/** DDL and LOCK TABLES: they commit an open transaction implicitly, and change data. */
	const IMPLICIT_COMMIT = 'implicit_commit';
	/** Anything else: INSERT, UPDATE, DELETE, REPLACE, CALL, DO, SET, ... */
	const WRITE = 'write';

	/** The connection was lost after the statement was sent: it may or may not have run. */
	const ERR_LOST = 'lost';
	/** The server is read-only and refused the statement: it did not run. */
	const ERR_READ_ONLY = 'read_only';
	/** Any other error, or none: the server's answer stands. */
	const ERR_OTHER = 'other';

	/** Reconnect (current settings; SSM once more if the host is unreachable) and run it once more. */
	const RETRY = 'retry';
	/** Ask SSM now; if it names another server, reconnect there and run it once more; else fail. */
	const REFRESH_RETRY = 'refresh_retry';
	/** Not run again; the request is told the outcome is unknown; later statements reconnect. */
	const UNKNOWN = 'unknown';
	/** The transaction was rolled back by the loss: not run again; statements are refused until ROLLBACK. */
	const TXN_LOST = 'transaction_lost';
	/** A lost ROLLBACK: the server rolled back when the connection went; reconnect and report success. */
	const ROLLED_BACK = 'rolled_back';
	/** The error stands as the server (or the lost connection) gave it; nothing is run again. */
	const FAIL = 'fail';

	/** MySQL/MariaDB errors that mean the connection went away while the statement was out. */
	const LOST_ERRNOS = array(
		2006, // CR_SERVER_GONE_ERROR: mysqlnd's answer to any read or write failure.
		2013, // CR_SERVER_LOST: lost connection during query.
		2055, // CR_SERVER_LOST_EXTENDED.
		1053, // ER_SERVER_SHUTDOWN: the server went down under the statement.
		1927, // ER_CONNECTION_KILLED (MariaDB).
		4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8): the server closed an idle session.
	);

	/** Errors of a server that refuses writes. */
	const READ_ONLY_ERRNOS = array(
		1290, // ER_OPTION_PREVENTS_STATEMENT: --read-only (a demoted primary, a replica).
		1836, // ER_READ_ONLY_MODE: innodb_read_only / read-only mode.
	);

	/**
	 * The class of a statement, from its text. Comments and parentheses before the first word
	 * are skipped. When in doubt the answer is WRITE: a write is never re-run after a loss, so
	 * a wrong WRITE costs an error where a retry would have worked, never a duplicate.
	 *
	 * @param string $query The SQL as sent.
	 */
	public static function classify( string $query ): string {
		$text = self::strip_leading( $query );
		if ( ! preg_match( '/^([a-z]+)\b/i', $text, $m ) ) {
			return self::WRITE;
		}
		$first = strtolower( $m[1] );
		switch ( $first ) {
			case 'select':
				if ( preg_match( '/\bfor\s+(update|share)\b|\block\s+in\s+share\s+mode\b/i', $text ) ) {
					return self::LOCKING_READ;
				}
				// INTO OUTFILE/DUMPFILE writes a file; SELECT ... INTO @var is harmless but rare.
				if ( preg_match( '/\binto\s+(outfile|dumpfile|@)/i', $text ) ) {
					return self::WRITE;
				}
				return self::READ;
			case 'show':
			case 'describe':
			case 'desc':
				return self::READ;
			case 'explain':
				// EXPLAIN ANALYZE (MySQL) and ANALYZE (MariaDB) execute the statement.
				return preg_match( '/^explain\s+analyze\b/i', $text ) ? self::WRITE : self::READ;
			case 'begin':
				// BEGIN NOT ATOMIC opens a compound statement, not a transaction.
				return preg_match( '/^begin\s+not\s+atomic\b/i', $text ) ? self::WRITE : self::BEGIN;
			case 'start':
				return preg_match( '/^start\s+transaction\b/i', $text ) ? self::BEGIN : self::WRITE;
			case 'commit':
				return self::COMMIT;
			case 'rollback':
				return preg_match( '/^rollback(\s+work)?\s+to\b/i', $text ) ? self::WRITE : self::ROLLBACK;
			case 'set':
				if ( preg_match( '/^set\s+(@@(session\.)?|session\s+)?autocommit\s*=\s*(0|off|false)\b/i', $text ) ) {
					return self::AUTOCOMMIT_OFF;
				}
				if ( preg_match( '/^set\s+(@@(session\.)?|session\s+)?autocommit\s*=/i', $text ) ) {
					return self::AUTOCOMMIT_ON;
				}
				return self::WRITE;
			case 'create':
			case 'alter':
			case 'drop':
			case 'truncate':
			case 'rename':
			case 'lock':
				return self::IMPLICIT_COMMIT;
			default:
				return self::WRITE;
		}
	}

	/**
	 * The kind of a MySQL error number.
	 *
	 * @param int $errno mysqli_errno() after the statement (0: none).
	 */
	public static function error_kind( int $errno ): string {
		if ( in_array( $errno, self::LOST_ERRNOS, true ) ) {
			return self::ERR_LOST;
		}
		if ( in_array( $errno, self::READ_ONLY_ERRNOS, true ) ) {
			return self::ERR_READ_ONLY;
		}
		return self::ERR_OTHER;
	}

	/**
	 * What to do with a statement that failed.
	 *
	 * @param string $class          A statement class (classify()).
	 * @param string $error          An error kind (error_kind()).
	 * @param bool   $in_transaction Whether a transaction was open when the statement was sent
	 *                               (for BEGIN: whether one was open before it).
	 */
	public static function decide( string $class, string $error, bool $in_transaction ): string {
		if ( self::ERR_READ_ONLY === $error ) {
			// Refused, so it did not run. Outside a transaction it may run on the new writer;
			// inside one, the transaction's earlier statements are on this server.
			return $in_transaction ? self::FAIL : self::REFRESH_RETRY;
		}
		if ( self::ERR_LOST !== $error ) {
			return self::FAIL;
		}
		if ( self::ROLLBACK === $class ) {
			// A session that ends without COMMIT is rolled back by the server.
			return self::ROLLED_BACK;
		}
		if ( self::COMMIT === $class || self::AUTOCOMMIT_ON === $class ) {
			// Whether the COMMIT (or a COMMIT of a transaction opened where this drop-in could
			// not see it) reached the server is what is unknown.
			return self::UNKNOWN;
		}
		if ( $in_transaction ) {
			return self::TXN_LOST;
		}
		switch ( $class ) {
			case self::READ:
			case self::BEGIN:
			case self::AUTOCOMMIT_OFF:
				// A new session has no transaction and autocommit on: running it again is
				// running it once there.
				return self::RETRY;
			case self::LOCKING_READ:
				// It changed nothing, but the locks it was to take serve a transaction that
				// this drop-in does not see (mysqli_begin_transaction() on $wpdb->dbh).
				return self::FAIL;
			default:
				return self::UNKNOWN;
		}
	}

	/**
	 * The session's transaction state after a statement of this class succeeded.
	 *
	 * @param string $class          The statement's class.
	 * @param bool   $open           Whether a transaction was opened explicitly before it.
	 * @param bool   $autocommit_off Whether autocommit was off before it.
	 * @return array{0: bool, 1: bool} open, autocommit_off. A transaction is in progress when
	 *                                 either is true.
	 */
	public static function state_after( string $class, bool $open, bool $autocommit_off ): array {
		switch ( $class ) {
			case self::BEGIN:
				return array( true, $autocommit_off );
			case self::COMMIT:
			case self::ROLLBACK:
			case self::IMPLICIT_COMMIT:
				return array( false, $autocommit_off );
			case self::AUTOCOMMIT_OFF:
				return array( $open, true );
			case self::AUTOCOMMIT_ON:
				return array( false, false );
			default:
				return array( $open, $autocommit_off );
		}
	}

	/**
	 * The statement without leading white space, comments (`/* *\/`, `-- `, `#`) and opening
	 * parentheses.
	 *
	 * @param string $query The SQL.
	 */
	private static function strip_leading( string $query ): string {
		$previous = null;
		while ( $previous !== $query ) {
			$previous = $query;
			$query    = ltrim( $query, " \t\r\n\f\v(" );
			if ( str_starts_with( $query, '/*' ) ) {
				$end   = strpos( $query, '*/', 2 );
				$query = false === $end ? '' : substr( $query, $end + 2 );
			} elseif ( str_starts_with( $query, '#' ) || preg_match( '/^--(\s|$)/', $query ) ) {
				$end   = strpos( $query, "\n" );
				$query = false === $end ? '' : substr( $query, $end + 1 );
			}
		}
		return $query;
	}
}
