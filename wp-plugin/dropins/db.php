<?php
/**
 * SSM DB Config drop-in: db.php
 *
 * For sites that have no other db.php. Follows a failover within a request, at the first
 * connection and at every reconnect after it, and never runs a statement twice when the first
 * run may have changed data.
 *
 * - Every connection after the request's first takes the settings SSM names now (the
 *   extension's ssm_db_config(), not the DB_* constants, which cannot change); when that server
 *   cannot be reached, the drop-in asks SSM again through the shared rate limit of one fetch per
 *   second per host and connects once more with what it returns.
 * - wpdb::query() runs a statement again after MySQL error 2006, on the same old host; an
 *   INSERT that had committed before the connection dropped then runs twice. Here the decision
 *   belongs to SSM_DB_Config_Reconnect_Policy (includes/class-reconnect-policy.php): plain reads
 *   run once more on the new connection; a write whose connection was lost after it was sent
 *   is reported as of unknown outcome and not run again; a write a read-only server refused
 *   (MySQL 1290, 1836) runs once more on the writer SSM names; nothing inside a transaction is
 *   run again. docs/failover.md says what a request sees.
 *
 * Installed from Tools → Database Config; removed when the plugin is deleted.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

( static function () {
	$plugin_dir = defined( 'SSM_DB_CONFIG_PLUGIN_DIR' )
		? SSM_DB_CONFIG_PLUGIN_DIR
		: ( defined( 'WP_PLUGIN_DIR' ) ? WP_PLUGIN_DIR : WP_CONTENT_DIR . '/plugins' ) . '/ssm-db-config';
	foreach ( array( 'class-refresh-limiter.php', 'class-reconnect-policy.php' ) as $file ) {
		if ( is_readable( $plugin_dir . '/includes/' . $file ) ) {
			require_once $plugin_dir . '/includes/' . $file;
		}
	}
} )();

/**
 * wpdb that takes its settings from SSM at every reconnect and decides itself which statements
 * may run again after a lost connection.
 */
class SSM_DB_Config_WPDB extends wpdb {
	/** WP_Error codes of ssm_db_config_outcome(), also the first argument of the action. */
	const OUTCOME_UNKNOWN    = 'ssm_db_config_outcome_unknown';
	const TRANSACTION_LOST   = 'ssm_db_config_transaction_lost';
	const NOT_RECONNECTED    = 'ssm_db_config_not_reconnected';
	const MSG_UNKNOWN        = 'Outcome unknown: the connection to the database was lost after this statement was sent (MySQL error %d). It may have run; it was not run again. Check whether it took effect before repeating it.';
	const MSG_TXN_LOST       = 'Transaction lost: the connection to the database was lost inside a transaction (MySQL error %d). The server rolled the transaction back; nothing of it was committed. Statements are refused until ROLLBACK.';
	const MSG_TXN_LOST_IDLE  = 'Transaction lost: the connection to the database was found closed inside a transaction. The server rolled the transaction back; nothing of it was committed; this statement was not sent. Statements are refused until ROLLBACK.';
	const MSG_TXN_REFUSED    = 'Transaction lost earlier in this request (see the previous error): this statement was not sent. Send ROLLBACK, then start again.';
	const MSG_TXN_COMMIT     = 'Transaction lost earlier in this request: it was rolled back when the connection was lost; nothing of it was committed.';
	const MSG_NOT_RECONNECT  = 'Not run: the connection to the database was lost and could not be made again to the server SSM names. The statement was not sent; it is safe to repeat it later.';
	const MSG_LOCKING_READ   = 'Not run again: the connection to the database was lost during a locking read (MySQL error %d); the locks it took were released with the connection.';

	/**
	 * Whether the first connection attempt has been made.
	 *
	 * @var bool
	 */
	private $ssm_db_config_first_done = false;

	/** Depth of query() calls in progress (wpdb::query() may call itself). */
	private int $ssm_depth = 0;

	/** The MySQL error that made wpdb::query() ask check_connection() to reconnect, or 0. */
	private int $ssm_lost_errno = 0;

	/** The connection was lost: connect again before the next statement is sent. */
	private bool $ssm_dead = false;

	/** START TRANSACTION / BEGIN seen, no COMMIT or ROLLBACK yet. */
	private bool $ssm_txn_open = false;

	/** SET autocommit = 0 in effect. */
	private bool $ssm_autocommit_off = false;

	/** A transaction was lost with its connection; statements are refused until ROLLBACK. */
	private bool $ssm_txn_lost = false;

	/** When the connection last answered (microtime). */
	private float $ssm_last_used = 0.0;

	/**
	 * Why the last statement failed when this class, not the server, decided it.
	 *
	 * @var WP_Error|null
	 */
	private $ssm_outcome = null;

	/**
	 * Connects. The first time with the request's settings; every later time with the
	 * settings SSM names now. When the server cannot be reached, refreshes from SSM (rate
	 * limited) and tries once more.
	 *
	 * @param bool $allow_bail Whether to show the database error page on failure.
	 * @return bool
	 */
	public function db_connect( $allow_bail = true ) {
		if ( ! class_exists( 'SSM_DB_Config_Refresh_Limiter', false ) ) {
			return parent::db_connect( $allow_bail );
		}
		if ( $this->ssm_db_config_first_done ) {
			// The DB_* constants hold what SSM named when the request started.
			$this->ssm_apply( $this->ssm_current() );
		}
		$this->ssm_db_config_first_done = true;
		if ( parent::db_connect( false ) ) {
			$this->ssm_new_session();
			return true;
		}
		$this->ssm_apply( ( new SSM_DB_Config_Refresh_Limiter() )->refresh()['config'] );
		if ( parent::db_connect( $allow_bail ) ) {
			$this->ssm_new_session();
			return true;
		}
		return false;
	}

	/**
	 * Called by wpdb::query() after MySQL error 2006 to reconnect and run the statement again.
	 * Within query() the policy decides instead, so this only notes the loss; called from
	 * elsewhere it is core's reconnect (whose db_connect() calls are this class's).
	 *
	 * @param bool $allow_bail Whether to show the database error page on failure.
	 * @return bool|void
	 */
	public function check_connection( $allow_bail = true ) {
		if ( $this->ssm_depth > 0 && class_exists( 'SSM_DB_Config_Reconnect_Policy', false ) ) {
			$errno                = $this->dbh instanceof mysqli ? mysqli_errno( $this->dbh ) : 0;
			$this->ssm_lost_errno = $errno > 0 ? $errno : 2006;
			return false;
		}
		return parent::check_connection( $allow_bail );
	}

	/**
	 * Runs a statement; after a lost connection or a read-only server, does what the policy
	 * says (SSM_DB_Config_Reconnect_Policy::decide()).
	 *
	 * @param string $query Database query.
	 * @return int|bool As wpdb::query().
	 */
	public function query( $query ) {
		if ( ! $this->ready || ! is_string( $query ) || ! class_exists( 'SSM_DB_Config_Reconnect_Policy', false ) ) {
			return parent::query( $query );
		}
		$policy            = 'SSM_DB_Config_Reconnect_Policy';
		$class             = $policy::classify( $query );
		$in_txn            = $this->ssm_txn_open || $this->ssm_autocommit_off;
		$this->ssm_outcome = null;

		if ( $this->ssm_txn_lost ) {
			if ( $policy::ROLLBACK === $class ) {
				$this->ssm_txn_lost = false;
				$this->flush();
				$this->last_query = $query;
				return 0;
			}
			if ( $policy::COMMIT === $class || $policy::AUTOCOMMIT_ON === $class ) {
				$this->ssm_txn_lost = false;
			}
			return $this->ssm_fail( $query, self::TRANSACTION_LOST, $policy::COMMIT === $class ? self::MSG_TXN_COMMIT : self::MSG_TXN_REFUSED, 0 );
		}

		if ( ! $this->ssm_dead && $this->dbh instanceof mysqli && $policy::READ !== $class && $this->ssm_idle_too_long() && ! $this->ssm_alive() ) {
			// Found closed before sending (a server's wait_timeout, a failover while idle): the
			// statement has not been sent, so it may go to a new connection.
			$this->ssm_dead = true;
			if ( $in_txn ) {
				$this->ssm_lost_session();
				$this->ssm_txn_lost = $policy::ROLLBACK !== $class;
				return $policy::ROLLBACK === $class ? 0 : $this->ssm_fail( $query, self::TRANSACTION_LOST, self::MSG_TXN_LOST_IDLE, 0 );
			}
		}
		if ( ( $this->ssm_dead || ! $this->dbh instanceof mysqli ) && ! $this->ssm_reconnect() ) {
			return $this->ssm_fail( $query, self::NOT_RECONNECTED, self::MSG_NOT_RECONNECT, 0 );
		}

		list( $result, $errno ) = $this->ssm_run( $query );
		if ( false !== $result || 0 === $errno ) {
			list( $this->ssm_txn_open, $this->ssm_autocommit_off ) = $policy::state_after( $class, $this->ssm_txn_open, $this->ssm_autocommit_off );
			return $result;
		}
		$kind   = $policy::error_kind( $errno );
		$action = $policy::decide( $class, $kind, $in_txn );
		if ( $policy::ERR_LOST === $kind ) {
			$this->ssm_dead = true;
			$this->ssm_lost_session();
		}
		switch ( $action ) {
			case $policy::RETRY:
				if ( ! $this->ssm_reconnect() ) {
					return $this->ssm_fail( $query, self::NOT_RECONNECTED, self::MSG_NOT_RECONNECT, $errno );
				}
				return $this->ssm_again( $query, $class );
			case $policy::REFRESH_RETRY:
				return $this->ssm_writer_moved() ? $this->ssm_again( $query, $class ) : $result;
			case $policy::UNKNOWN:
				return $this->ssm_fail( $query, self::OUTCOME_UNKNOWN, sprintf( self::MSG_UNKNOWN, $errno ), $errno );
			case $policy::TXN_LOST:
				$this->ssm_txn_lost = true;
				return $this->ssm_fail( $query, self::TRANSACTION_LOST, sprintf( self::MSG_TXN_LOST, $errno ), $errno );
			case $policy::ROLLED_BACK:
				$this->flush();
				return 0;
			default:
				if ( $policy::ERR_LOST === $kind ) {
					// wpdb::query() returns before noting the error when it wanted to reconnect.
					return $this->ssm_fail( $query, self::NOT_RECONNECTED, sprintf( self::MSG_LOCKING_READ, $errno ), $errno );
				}
				return $result;
		}
	}

	/**
	 * Why the last statement failed when this drop-in decided it (outcome unknown, transaction
	 * lost, no reconnect), or null when it succeeded or the server's error stands.
	 *
	 * @return WP_Error|null The code is one of the class's constants; the data holds errno and
	 *                       the statement's class.
	 */
	public function ssm_db_config_outcome() {
		return $this->ssm_outcome;
	}

	/**
	 * Runs the statement through wpdb::query() once.
	 *
	 * @param string $query The statement.
	 * @return array{0: int|bool, 1: int} The result, and the MySQL error number (0: none).
	 */
	private function ssm_run( string $query ): array {
		$saved                = $this->ssm_lost_errno;
		$this->ssm_lost_errno = 0;
		++$this->ssm_depth;
		try {
			$result = parent::query( $query );
		} finally {
			--$this->ssm_depth;
		}
		$errno                = $this->ssm_lost_errno;
		$this->ssm_lost_errno = $saved;
		if ( 0 === $errno && $this->dbh instanceof mysqli ) {
			$errno = mysqli_errno( $this->dbh );
		}
		$this->ssm_last_used = microtime( true );
		return array( $result, $errno );
	}

	/**
	 * The second and last run of a statement, on a new connection.
	 *
	 * @param string $query The statement.
	 * @param string $class Its class.
	 * @return int|bool
	 */
	private function ssm_again( string $query, string $class ) {
		$policy                 = 'SSM_DB_Config_Reconnect_Policy';
		list( $result, $errno ) = $this->ssm_run( $query );
		if ( false !== $result || 0 === $errno ) {
			list( $this->ssm_txn_open, $this->ssm_autocommit_off ) = $policy::state_after( $class, $this->ssm_txn_open, $this->ssm_autocommit_off );
			return $result;
		}
		if ( $policy::ERR_LOST === $policy::error_kind( $errno ) ) {
			$this->ssm_dead = true;
			$this->ssm_lost_session();
			return $policy::READ === $class || $policy::BEGIN === $class || $policy::AUTOCOMMIT_OFF === $class
				? $this->ssm_fail( $query, self::NOT_RECONNECTED, self::MSG_NOT_RECONNECT, $errno )
				: $this->ssm_fail( $query, self::OUTCOME_UNKNOWN, sprintf( self::MSG_UNKNOWN, $errno ), $errno );
		}
		return $result;
	}

	/**
	 * Connects again, with the settings SSM names now (db_connect()), through core's
	 * reconnect loop: up to $reconnect_retries attempts a second apart.
	 */
	private function ssm_reconnect(): bool {
		$this->dbh = null;
		return true === parent::check_connection( false );
	}

	/**
	 * After a read-only server refused a statement: asks SSM now, and connects to the server
	 * it names if that is another one. False when SSM still names this one.
	 */
	private function ssm_writer_moved(): bool {
		$config = ( new SSM_DB_Config_Refresh_Limiter() )->refresh()['config'];
		if ( ! $this->ssm_usable( $config ) || ( $config['DB_HOST'] === $this->dbhost && $config['DB_USER'] === $this->dbuser && $config['DB_NAME'] === $this->dbname && $config['DB_PASSWORD'] === $this->dbpassword ) ) {
			return false;
		}
		return $this->ssm_reconnect();
	}

	/**
	 * Whether the connection has been idle long enough to be checked before a statement that
	 * must not meet a closed connection (SSM_DB_CONFIG_IDLE_CHECK seconds, 1 by default; a
	 * negative value never checks).
	 */
	private function ssm_idle_too_long(): bool {
		$limit = defined( 'SSM_DB_CONFIG_IDLE_CHECK' ) ? (float) SSM_DB_CONFIG_IDLE_CHECK : 1.0;
		return $limit >= 0 && microtime( true ) - $this->ssm_last_used >= $limit;
	}

	/**
	 * Whether the connection answers (core's own liveness check).
	 */
	private function ssm_alive(): bool {
		// phpcs:ignore WordPress.PHP.NoSilencedErrors -- a closed connection warns; the caller reconnects.
		$alive               = false !== @mysqli_query( $this->dbh, 'DO 1' );
		$this->ssm_last_used = microtime( true );
		return $alive;
	}

	/**
	 * Fails the statement with this drop-in's error: last_error, ssm_db_config_outcome(), the
	 * ssm_db_config_statement_failed action, and wpdb's usual error output.
	 *
	 * @param string $query   The statement.
	 * @param string $code    One of the class's WP_Error codes.
	 * @param string $message The message.
	 * @param int    $errno   The MySQL error, or 0.
	 * @return false
	 */
	private function ssm_fail( string $query, string $code, string $message, int $errno ) {
		$this->last_query = $query;
		$this->last_error = $message;
		$this->insert_id  = 0;
		if ( class_exists( 'WP_Error', false ) ) {
			$this->ssm_outcome = new WP_Error( $code, $message, array( 'errno' => $errno ) );
		}
		if ( function_exists( 'do_action' ) ) {
			/**
			 * Fires when the drop-in fails a statement itself: its outcome is unknown, its
			 * transaction was lost, or no connection could be made again.
			 *
			 * @param string $code  ssm_db_config_outcome_unknown, ssm_db_config_transaction_lost or ssm_db_config_not_reconnected.
			 * @param string $query The statement.
			 * @param int    $errno The MySQL error number that was seen, or 0.
			 */
			do_action( 'ssm_db_config_statement_failed', $code, $query, $errno );
		}
		// wpdb::print_error() would print the connection's error, not this one.
		$this->print_error( $message );
		return false;
	}

	/**
	 * A new session has no transaction and autocommit on.
	 */
	private function ssm_new_session(): void {
		$this->ssm_dead           = false;
		$this->ssm_txn_open       = false;
		$this->ssm_autocommit_off = false;
		$this->ssm_last_used      = microtime( true );
	}

	/**
	 * The session is gone, and its transaction with it.
	 */
	private function ssm_lost_session(): void {
		$this->ssm_txn_open       = false;
		$this->ssm_autocommit_off = false;
	}

	/**
	 * The settings SSM names now (the extension's cache), or null.
	 */
	private function ssm_current(): ?array {
		if ( ! function_exists( 'ssm_db_config' ) ) {
			return null;
		}
		try {
			return ssm_db_config();
		} catch ( \Throwable $e ) {
			return null;
		}
	}

	/**
	 * Whether a value from the extension can be used by this MySQL client.
	 *
	 * @param mixed $config What the extension returned.
	 */
	private function ssm_usable( $config ): bool {
		return is_array( $config ) && isset( $config['DB_HOST'], $config['DB_USER'], $config['DB_PASSWORD'], $config['DB_NAME'] )
			&& 'mysql' === ( $config['DB_ENGINE'] ?? 'mysql' );
	}

	/**
	 * Uses these settings for the next connection.
	 *
	 * @param array|null $config What the extension returned.
	 */
	private function ssm_apply( #[\SensitiveParameter] $config ): void {
		if ( ! $this->ssm_usable( $config ) ) {
			return;
		}
		$this->dbhost     = $config['DB_HOST'];
		$this->dbuser     = $config['DB_USER'];
		$this->dbpassword = $config['DB_PASSWORD'];
		$this->dbname     = $config['DB_NAME'];
	}
}

$wpdb = new SSM_DB_Config_WPDB( DB_USER, DB_PASSWORD, DB_NAME, DB_HOST ); // phpcs:ignore WordPress.WP.GlobalVariablesOverride -- this is what a db.php drop-in is for.
