<?php
/**
 * Which database drop-ins are in wp-content, and installing or removing ours.
 *
 * Ours carry a marker line; a db.php without it belongs to another plugin (PG4WP, HyperDB,
 * Query Monitor, ...) and is never touched: then the db-error.php path follows failovers.
 *
 * @package SsmDbConfig
 */

defined( 'ABSPATH' ) || exit;

/**
 * Drop-in files.
 */
final class SSM_DB_Config_Dropins {
	/** The line that marks a drop-in as ours. */
	const MARKER = 'SSM DB Config drop-in';

	/** The drop-ins we ship. */
	const NAMES = array( 'db.php', 'db-error.php' );

	/** States. */
	const ABSENT   = 'absent';
	const OURS     = 'ours';
	const OUTDATED = 'outdated';
	const FOREIGN  = 'foreign';

	/**
	 * @param string      $content_dir WP_CONTENT_DIR.
	 * @param string|null $source_dir  Where our copies live (the plugin's dropins/ folder).
	 */
	public function __construct(
		private readonly string $content_dir,
		private ?string $source_dir = null
	) {
		$this->source_dir ??= dirname( __DIR__ ) . '/dropins';
	}

	/**
	 * The state of one drop-in: absent, ours (current), outdated (ours, older copy) or foreign.
	 *
	 * @param string $name db.php or db-error.php.
	 */
	public function state( string $name ): string {
		$this->assert_name( $name );
		$target = $this->target( $name );
		if ( ! is_file( $target ) ) {
			return self::ABSENT;
		}
		$installed = (string) file_get_contents( $target ); // phpcs:ignore WordPress.WP.AlternativeFunctions
		if ( ! str_contains( $installed, self::MARKER ) ) {
			return self::FOREIGN;
		}
		return $installed === (string) file_get_contents( $this->source( $name ) ) ? self::OURS : self::OUTDATED; // phpcs:ignore WordPress.WP.AlternativeFunctions
	}

	/**
	 * All states, keyed by name.
	 *
	 * @return array<string, string>
	 */
	public function states(): array {
		$states = array();
		foreach ( self::NAMES as $name ) {
			$states[ $name ] = $this->state( $name );
		}
		return $states;
	}

	/**
	 * How this site follows a failover, from the installed files:
	 * 'retry' (our db.php reconnects within the request), 'error-page' (only our db-error.php:
	 * the failing request answers 503 and the next one uses the new endpoint) or 'none'.
	 */
	public function failover_mode(): string {
		$states = $this->states();
		if ( in_array( $states['db.php'], array( self::OURS, self::OUTDATED ), true ) ) {
			return 'retry';
		}
		if ( in_array( $states['db-error.php'], array( self::OURS, self::OUTDATED ), true ) ) {
			return 'error-page';
		}
		return 'none';
	}

	/**
	 * Whether files can be created in wp-content.
	 */
	public function writable(): bool {
		return is_dir( $this->content_dir ) && is_writable( $this->content_dir ); // phpcs:ignore WordPress.WP.AlternativeFunctions
	}

	/**
	 * Copies our drop-in into wp-content. Refuses to replace another plugin's file.
	 *
	 * @param string $name db.php or db-error.php.
	 * @return array{ok: bool, code: string} code: installed, foreign, not_writable, write_failed.
	 */
	public function install( string $name ): array {
		$this->assert_name( $name );
		if ( self::FOREIGN === $this->state( $name ) ) {
			return array( 'ok' => false, 'code' => 'foreign' );
		}
		if ( ! $this->writable() ) {
			return array( 'ok' => false, 'code' => 'not_writable' );
		}
		// Write beside the target, then rename: a worker never includes a half-written drop-in.
		$temp = $this->content_dir . '/.' . $name . '.' . getmypid() . '.tmp';
		if ( ! @copy( $this->source( $name ), $temp ) || ! @rename( $temp, $this->target( $name ) ) ) { // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
			@unlink( $temp ); // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
			return array( 'ok' => false, 'code' => 'write_failed' );
		}
		if ( function_exists( 'opcache_invalidate' ) ) {
			opcache_invalidate( $this->target( $name ), true );
		}
		return array( 'ok' => true, 'code' => 'installed' );
	}

	/**
	 * Removes our drop-in; never another plugin's.
	 *
	 * @param string $name db.php or db-error.php.
	 * @return array{ok: bool, code: string} code: removed, absent, foreign, write_failed.
	 */
	public function remove( string $name ): array {
		$state = $this->state( $name );
		if ( self::ABSENT === $state ) {
			return array( 'ok' => true, 'code' => 'absent' );
		}
		if ( self::FOREIGN === $state ) {
			return array( 'ok' => false, 'code' => 'foreign' );
		}
		if ( ! @unlink( $this->target( $name ) ) ) { // phpcs:ignore WordPress.PHP.NoSilencedErrors, WordPress.WP.AlternativeFunctions
			return array( 'ok' => false, 'code' => 'write_failed' );
		}
		if ( function_exists( 'opcache_invalidate' ) ) {
			opcache_invalidate( $this->target( $name ), true );
		}
		return array( 'ok' => true, 'code' => 'removed' );
	}

	/**
	 * Path in wp-content.
	 *
	 * @param string $name Drop-in.
	 */
	public function target( string $name ): string {
		return $this->content_dir . '/' . $name;
	}

	/**
	 * Path of our copy.
	 *
	 * @param string $name Drop-in.
	 */
	private function source( string $name ): string {
		return $this->source_dir . '/' . $name;
	}

	/**
	 * @param string $name Drop-in.
	 * @throws InvalidArgumentException On a name we do not ship (it would become a path).
	 */
	private function assert_name( string $name ): void {
		if ( ! in_array( $name, self::NAMES, true ) ) {
			throw new InvalidArgumentException( 'Unknown drop-in.' );
		}
	}
}
