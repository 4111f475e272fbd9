<?php
/**
 * SSM_DB_Config_Reconnect_Policy: which statements the db.php drop-in runs again after a lost
 * connection or a read-only server. Pure functions, so every case is a row.
 */

require_once WP_PLUGIN_DIR . '/ssm-db-config/includes/class-reconnect-policy.php';

use SSM_DB_Config_Reconnect_Policy as P;

final class ReconnectPolicyTest extends SSM_DB_Config_TestCase {
	/** Statement text → class. */
	public static function statements(): array {
		return array(
			'select'                       => array( 'SELECT * FROM wp_posts', P::READ ),
			'select after comment and ws'  => array( "  /* q */\n -- x\n # y\n select 1", P::READ ),
			'parenthesised select'         => array( '(SELECT 1) UNION (SELECT 2)', P::READ ),
			'show'                         => array( "SHOW FULL COLUMNS FROM `wp_posts`", P::READ ),
			'describe'                     => array( 'DESCRIBE wp_posts', P::READ ),
			'desc'                         => array( 'desc wp_posts', P::READ ),
			'explain'                      => array( 'EXPLAIN SELECT 1', P::READ ),
			'explain analyze runs it'      => array( 'EXPLAIN ANALYZE SELECT 1', P::WRITE ),
			'for update'                   => array( 'SELECT id FROM t WHERE id = 1 FOR UPDATE', P::LOCKING_READ ),
			'for share'                    => array( 'SELECT id FROM t FOR SHARE', P::LOCKING_READ ),
			'lock in share mode'           => array( 'SELECT id FROM t LOCK IN SHARE MODE', P::LOCKING_READ ),
			'into outfile'                 => array( "SELECT * FROM t INTO OUTFILE '/tmp/x'", P::WRITE ),
			'into variable'                => array( 'SELECT 1 INTO @x', P::WRITE ),
			'insert'                       => array( "INSERT INTO `wp_posts` (`a`) VALUES ('x')", P::WRITE ),
			'insert after comment'         => array( '/* SELECT */ INSERT INTO t VALUES (1)', P::WRITE ),
			'update'                       => array( 'UPDATE t SET a = 1', P::WRITE ),
			'delete'                       => array( 'DELETE FROM t', P::WRITE ),
			'replace'                      => array( 'REPLACE INTO t VALUES (1)', P::WRITE ),
			'cte is not known to be read'  => array( 'WITH x AS (SELECT 1) SELECT * FROM x', P::WRITE ),
			'do'                           => array( 'DO GET_LOCK("x", 1)', P::WRITE ),
			'call'                         => array( 'CALL p()', P::WRITE ),
			'set variable'                 => array( 'SET @x = 1', P::WRITE ),
			'start transaction'            => array( 'START TRANSACTION', P::BEGIN ),
			'start transaction read only'  => array( 'start transaction read only', P::BEGIN ),
			'begin'                        => array( 'BEGIN', P::BEGIN ),
			'begin not atomic'             => array( 'BEGIN NOT ATOMIC SELECT 1; END', P::WRITE ),
			'commit'                       => array( 'COMMIT', P::COMMIT ),
			'commit work'                  => array( 'commit work', P::COMMIT ),
			'rollback'                     => array( 'ROLLBACK', P::ROLLBACK ),
			'rollback to savepoint'        => array( 'ROLLBACK TO SAVEPOINT a', P::WRITE ),
			'rollback work to'             => array( 'ROLLBACK WORK TO a', P::WRITE ),
			'autocommit off'               => array( 'SET autocommit = 0', P::AUTOCOMMIT_OFF ),
			'autocommit off, session'      => array( 'SET SESSION autocommit=OFF', P::AUTOCOMMIT_OFF ),
			'autocommit off, @@'           => array( 'SET @@autocommit = 0', P::AUTOCOMMIT_OFF ),
			'autocommit on'                => array( 'SET autocommit = 1', P::AUTOCOMMIT_ON ),
			'create table'                 => array( 'CREATE TABLE t (a int)', P::IMPLICIT_COMMIT ),
			'alter'                        => array( 'ALTER TABLE t ADD b int', P::IMPLICIT_COMMIT ),
			'drop'                         => array( 'DROP TABLE t', P::IMPLICIT_COMMIT ),
			'truncate'                     => array( 'TRUNCATE t', P::IMPLICIT_COMMIT ),
			'lock tables'                  => array( 'LOCK TABLES t WRITE', P::IMPLICIT_COMMIT ),
			'empty'                        => array( '', P::WRITE ),
			'only a comment'               => array( '/* SELECT 1', P::WRITE ),
		);
	}

	/**
	 * @dataProvider statements
	 */
	public function test_classify_statement_gives_its_class( string $sql, string $class ): void {
		$this->assertSame( $class, P::classify( $sql ) );
	}

	/** MySQL error number → kind. */
	public static function errors(): array {
		return array(
			'gone away'          => array( 2006, P::ERR_LOST ),
			'lost during query'  => array( 2013, P::ERR_LOST ),
			'lost, extended'     => array( 2055, P::ERR_LOST ),
			'server shutdown'    => array( 1053, P::ERR_LOST ),
			'connection killed'  => array( 1927, P::ERR_LOST ),
			'idle disconnect'    => array( 4031, P::ERR_LOST ),
			'read-only option'   => array( 1290, P::ERR_READ_ONLY ),
			'read-only mode'     => array( 1836, P::ERR_READ_ONLY ),
			'duplicate key'      => array( 1062, P::ERR_OTHER ),
			'deadlock'           => array( 1213, P::ERR_OTHER ),
			'syntax'             => array( 1064, P::ERR_OTHER ),
			'none'               => array( 0, P::ERR_OTHER ),
		);
	}

	/**
	 * @dataProvider errors
	 */
	public function test_error_kind_of_errno( int $errno, string $kind ): void {
		$this->assertSame( $kind, P::error_kind( $errno ) );
	}

	/**
	 * Every class × error kind × inside or outside a transaction: the whole table, so that a
	 * change to any cell is a visible change here.
	 */
	public static function decisions(): array {
		$table = array(
			// class                 lost: outside, inside txn      read-only: outside, inside     other
			P::READ            => array( P::RETRY, P::TXN_LOST, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::LOCKING_READ    => array( P::FAIL, P::TXN_LOST, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::BEGIN           => array( P::RETRY, P::TXN_LOST, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::AUTOCOMMIT_OFF  => array( P::RETRY, P::TXN_LOST, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::COMMIT          => array( P::UNKNOWN, P::UNKNOWN, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::AUTOCOMMIT_ON   => array( P::UNKNOWN, P::UNKNOWN, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::ROLLBACK        => array( P::ROLLED_BACK, P::ROLLED_BACK, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::IMPLICIT_COMMIT => array( P::UNKNOWN, P::TXN_LOST, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
			P::WRITE           => array( P::UNKNOWN, P::TXN_LOST, P::REFRESH_RETRY, P::FAIL, P::FAIL ),
		);
		$rows = array();
		foreach ( $table as $class => list( $lost_out, $lost_in, $ro_out, $ro_in, $other ) ) {
			$rows[ "$class, lost, outside" ]      = array( $class, P::ERR_LOST, false, $lost_out );
			$rows[ "$class, lost, in txn" ]       = array( $class, P::ERR_LOST, true, $lost_in );
			$rows[ "$class, read-only, outside" ] = array( $class, P::ERR_READ_ONLY, false, $ro_out );
			$rows[ "$class, read-only, in txn" ]  = array( $class, P::ERR_READ_ONLY, true, $ro_in );
			$rows[ "$class, other, outside" ]     = array( $class, P::ERR_OTHER, false, $other );
			$rows[ "$class, other, in txn" ]      = array( $class, P::ERR_OTHER, true, $other );
		}
		return $rows;
	}

	/**
	 * @dataProvider decisions
	 */
	public function test_decide_class_error_transaction_gives_action( string $class, string $error, bool $in_txn, string $action ): void {
		$this->assertSame( $action, P::decide( $class, $error, $in_txn ) );
	}

	/** The property the table exists for: nothing that may have changed data is run again. */
	public function test_no_statement_that_may_change_data_is_run_again_after_a_loss(): void {
		foreach ( array( P::WRITE, P::COMMIT, P::AUTOCOMMIT_ON, P::IMPLICIT_COMMIT, P::LOCKING_READ ) as $class ) {
			foreach ( array( false, true ) as $in_txn ) {
				$this->assertNotSame( P::RETRY, P::decide( $class, P::ERR_LOST, $in_txn ), "$class" );
			}
		}
		foreach ( array( P::READ, P::BEGIN, P::AUTOCOMMIT_OFF, P::WRITE ) as $class ) {
			$this->assertSame( P::TXN_LOST, P::decide( $class, P::ERR_LOST, true ), "$class in a transaction" );
		}
	}

	/** Transaction state after each class: [open, autocommit_off] before → after. */
	public static function states(): array {
		return array(
			'begin opens'                => array( P::BEGIN, false, false, array( true, false ) ),
			'commit closes'              => array( P::COMMIT, true, false, array( false, false ) ),
			'rollback closes'            => array( P::ROLLBACK, true, false, array( false, false ) ),
			'ddl commits implicitly'     => array( P::IMPLICIT_COMMIT, true, false, array( false, false ) ),
			'write keeps it open'        => array( P::WRITE, true, false, array( true, false ) ),
			'read outside stays outside' => array( P::READ, false, false, array( false, false ) ),
			'autocommit off'             => array( P::AUTOCOMMIT_OFF, false, false, array( false, true ) ),
			'commit keeps autocommit off' => array( P::COMMIT, false, true, array( false, true ) ),
			'autocommit on ends both'    => array( P::AUTOCOMMIT_ON, true, true, array( false, false ) ),
		);
	}

	/**
	 * @dataProvider states
	 */
	public function test_state_after_class_gives_open_and_autocommit( string $class, bool $open, bool $off, array $after ): void {
		$this->assertSame( $after, P::state_after( $class, $open, $off ) );
	}
}
