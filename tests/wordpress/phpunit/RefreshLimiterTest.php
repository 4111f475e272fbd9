<?php
/**
 * SSM_DB_Config_Refresh_Limiter: at most one fetch per second per host, and never a wait.
 * Uses the site's parameter (ssm_db_config.parameter = /wp/db) and a state folder of its own.
 * The php CLI has no host-wide cache, so the plugin keeps the limit here (the child processes
 * also run with ssm_db_config.shared_dir = off); under php-fpm the extension keeps it, which
 * tests/wordpress/failover.sh checks.
 */
final class RefreshLimiterTest extends SSM_DB_Config_TestCase {
	private string $dir;

	protected function setUp(): void {
		$this->dir = self::temp_dir();
		chmod( $this->dir, 0700 );
	}

	protected function tearDown(): void {
		self::remove_dir( $this->dir );
	}

	private function limiter(): SSM_DB_Config_Refresh_Limiter {
		return new SSM_DB_Config_Refresh_Limiter( null, 1.0, $this->dir );
	}

	/** The php CLI has no host-wide cache: the plugin keeps the limit (php-fpm: failover.sh). */
	public function test_in_the_cli_the_plugin_keeps_the_limit(): void {
		$this->assertFalse( ssm_db_config_status()['shared_cache'] );
		ssm_db_config();
		$this->assertSame( 'plugin', $this->limiter()->refresh()['limit'] );
	}

	public function test_without_the_shared_cache_a_second_refresh_within_the_interval_does_not_fetch(): void {
		$before = self::fetch_count();
		$out    = $this->child( 'ssm_db_config(); usleep(1100000); $a = $l->refresh(); $b = $l->refresh(); echo json_encode(array($a["limit"], $a["fetched"], $b["fetched"], $b["config"]["DB_ENGINE"] ?? null));' );
		$this->assertSame( array( 'plugin', true, false, 'mysql' ), json_decode( $out, true ), $out );
		$this->assertSame( 2, self::fetch_count() - $before, 'the first value and one refresh' );
	}

	public function test_state_file_is_in_the_private_folder_and_holds_time_and_version_but_no_secret(): void {
		$out   = $this->child( '$l->refresh(); echo json_encode(ssm_db_config_status()["version"]);' );
		$file  = (string) $this->limiter()->state_file();
		$state = (string) file_get_contents( $file );
		$this->assertNoCanary( $state, 'state file' );
		$data = json_decode( $state, true );
		$this->assertIsFloat( $data['time'] );
		$this->assertSame( json_decode( $out ), $data['version'] );
		$this->assertStringStartsWith( $this->dir . '/refresh-', $file );
	}

	/** Six PHP processes without the shared cache refresh at the same instant: one of them fetches. */
	public function test_concurrent_processes_fetch_once(): void {
		$start_at  = microtime( true ) + 1.5;
		$before    = self::fetch_count();
		$processes = array();
		for ( $i = 0; $i < 6; $i++ ) {
			$processes[] = $this->spawn( sprintf( 'ssm_db_config(); time_sleep_until(%F); $o = $l->refresh(); echo json_encode(array("fetched" => $o["fetched"], "error" => $o["error"]));', $start_at ), $pipes[ $i ] );
		}
		$fetched = 0;
		foreach ( $processes as $i => $process ) {
			$out = json_decode( (string) stream_get_contents( $pipes[ $i ][1] ), true );
			$err = stream_get_contents( $pipes[ $i ][2] );
			proc_close( $process );
			$this->assertIsArray( $out, "process $i printed its outcome ($err)" );
			$this->assertNull( $out['error'] );
			$fetched += $out['fetched'] ? 1 : 0;
		}
		$this->assertSame( 1, $fetched, 'refreshes that fetched' );
		// Six first calls (each process' own cache), plus the one refresh.
		$this->assertSame( 7, self::fetch_count() - $before );
	}

	/** While another worker refreshes (holds the lock), a refresh returns at once with what it has. */
	public function test_refresh_does_not_wait_while_another_worker_refreshes(): void {
		$lock = fopen( $this->limiter()->state_file() . '.lock', 'c' );
		$this->assertTrue( flock( $lock, LOCK_EX ) );
		try {
			$out = json_decode( $this->child( 'ssm_db_config(); usleep(1100000); $t = microtime(true); $o = $l->refresh(); echo json_encode(array(microtime(true) - $t, $o["fetched"], $o["config"]["DB_ENGINE"] ?? null));' ), true );
		} finally {
			flock( $lock, LOCK_UN );
			fclose( $lock );
		}
		$this->assertIsArray( $out );
		$this->assertLessThan( 0.2, $out[0], 'seconds the refresh took' );
		$this->assertFalse( $out[1], 'fetched' );
		$this->assertSame( 'mysql', $out[2], 'the value this worker holds' );
	}

	/**
	 * A process whose cached version is older than the one another process just fetched
	 * fetches at once, without waiting for the interval: it follows the failover.
	 */
	public function test_process_with_an_older_version_catches_up_without_waiting(): void {
		$config = ssm_db_config();
		$value  = 'mysql://wp:' . rawurlencode( $config['DB_PASSWORD'] ) . '@' . $config['DB_HOST'] . '/' . $config['DB_NAME'];
		unset( $config );
		// An "old" worker: caches the current version, then waits for a line on stdin.
		$old = $this->spawn( 'ssm_db_config(); $v = ssm_db_config_status()["version"]; echo "ready\n"; fgets(STDIN); $t = microtime(true); $o = $l->refresh(); echo json_encode(array($v, microtime(true) - $t, $o["fetched"], ssm_db_config_status()["version"]));', $pipes );
		// (Its stderr is read only after it ends: reading it now would wait for that.)
		$this->assertSame( "ready\n", fgets( $pipes[1] ), 'the old worker cached a value' );
		self::ssm_put( '/wp/db', $value );
		$this->assertSame( 'true', $this->child( 'ssm_db_config(); usleep(1100000); echo json_encode($l->refresh()["fetched"]);' ), 'another worker fetched the new version' );
		fwrite( $pipes[0], "go\n" );
		fclose( $pipes[0] );
		$out = json_decode( (string) stream_get_contents( $pipes[1] ), true );
		$err = stream_get_contents( $pipes[2] );
		proc_close( $old );
		$this->assertIsArray( $out, $err );
		list( $mine, $took, $fetched, $now ) = $out;
		$this->assertLessThan( 0.5, $took, 'seconds the refresh took (no waiting out the interval)' );
		$this->assertTrue( $fetched );
		$this->assertSame( $mine + 1, $now );
	}

	/** Runs $code in a PHP process without the shared cache, with $l a limiter on this test's folder. */
	private function child( string $code ): string {
		$process = $this->spawn( $code, $pipes );
		fclose( $pipes[0] );
		$out = (string) stream_get_contents( $pipes[1] );
		$err = (string) stream_get_contents( $pipes[2] );
		proc_close( $process );
		$this->assertSame( '', $err, 'the child wrote nothing to stderr' );
		return $out;
	}

	/**
	 * @param string $code  PHP code; $l is the limiter.
	 * @param array  $pipes Set to stdin, stdout, stderr.
	 * @return resource
	 */
	private function spawn( string $code, &$pipes ) {
		$prelude = sprintf(
			'define("SSM_DB_CONFIG_STANDALONE", true); require %s; $l = new SSM_DB_Config_Refresh_Limiter(null, 1.0, %s);',
			var_export( SSM_DB_CONFIG_LIMITER_FILE, true ),
			var_export( $this->dir, true )
		);
		$command = escapeshellarg( PHP_BINARY ) . ' -d ' . escapeshellarg( 'extension=' . self::extension_path() )
			. ' -d ' . escapeshellarg( 'ssm_db_config.parameter=' . ini_get( 'ssm_db_config.parameter' ) )
			. ' -d ssm_db_config.shared_dir=off -r ' . escapeshellarg( $prelude . $code );
		return proc_open( $command, array( 0 => array( 'pipe', 'r' ), 1 => array( 'pipe', 'w' ), 2 => array( 'pipe', 'w' ) ), $pipes );
	}

	private static function extension_path(): string {
		$path = (string) getenv( 'SO' );
		if ( ! is_file( $path ) ) {
			throw new RuntimeException( 'SO must name the extension' );
		}
		return $path;
	}
}
