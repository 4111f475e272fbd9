<?php
/**
 * SSM_DB_Config_Refresh_Limiter: one fetch per second per host, shared across processes.
 * Uses the site's parameter (ssm_db_config.parameter = /wp/db) and a state folder of its own.
 */
final class RefreshLimiterTest extends SSM_DB_Config_TestCase {
	private string $dir;

	protected function setUp(): void {
		$this->dir = self::temp_dir();
	}

	protected function tearDown(): void {
		self::remove_dir( $this->dir );
	}

	private function limiter(): SSM_DB_Config_Refresh_Limiter {
		return new SSM_DB_Config_Refresh_Limiter( null, 1.0, $this->dir );
	}

	public function test_first_refresh_fetches_and_a_second_within_the_interval_does_not(): void {
		ssm_db_config();
		self::age_cached_value();
		$before = self::fetch_count();
		$first  = $this->limiter()->refresh();
		$second = $this->limiter()->refresh();
		$this->assertTrue( $first['fetched'] );
		$this->assertNull( $first['error'] );
		$this->assertSame( 'mysql', $first['config']['DB_ENGINE'] );
		$this->assertFalse( $second['fetched'] );
		$this->assertSame( 'mysql', $second['config']['DB_ENGINE'], 'the cached value is returned' );
		$this->assertSame( 1, self::fetch_count() - $before );
	}

	public function test_refresh_after_the_interval_fetches_again(): void {
		$this->assertTrue( $this->limiter()->refresh()['fetched'] );
		self::age_cached_value();
		$before = self::fetch_count();
		$this->assertTrue( $this->limiter()->refresh()['fetched'] );
		$this->assertSame( 1, self::fetch_count() - $before );
	}

	public function test_state_file_holds_time_and_version_but_no_secret(): void {
		$this->limiter()->refresh();
		$state = (string) file_get_contents( $this->limiter()->state_file() );
		$this->assertNoCanary( $state, 'state file' );
		$data = json_decode( $state, true );
		$this->assertIsFloat( $data['time'] );
		$this->assertSame( ssm_db_config_status()['version'], $data['version'] );
		$this->assertStringStartsWith( $this->dir . '/ssm-db-config-refresh-', $this->limiter()->state_file() );
	}

	/** Six PHP processes refresh at the same instant: one of them fetches. */
	public function test_concurrent_processes_fetch_once(): void {
		$start_at = microtime( true ) + 1.5;
		$code     = sprintf(
			'define("SSM_DB_CONFIG_STANDALONE", true); require %s; ssm_db_config();'
			. ' time_sleep_until(%F); $o = (new SSM_DB_Config_Refresh_Limiter(null, 1.0, %s))->refresh();'
			. ' echo json_encode(array("fetched" => $o["fetched"], "error" => $o["error"]));',
			var_export( SSM_DB_CONFIG_LIMITER_FILE, true ),
			$start_at,
			var_export( $this->dir, true )
		);
		$before    = self::fetch_count();
		$processes = array();
		for ( $i = 0; $i < 6; $i++ ) {
			$processes[] = proc_open( self::php_command( $code ), array( 1 => array( 'pipe', 'w' ), 2 => array( 'pipe', 'w' ) ), $pipes[ $i ] );
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

	/**
	 * A process whose cached version is older than the one another process just fetched
	 * waits for the interval to end and fetches: it follows the failover, within the limit.
	 */
	public function test_process_with_an_older_version_waits_for_the_interval_then_fetches(): void {
		ssm_db_config();
		$mine = ssm_db_config_status()['version'];
		$config = ssm_db_config();
		self::ssm_put( '/wp/db', 'mysql://wp:' . rawurlencode( $config['DB_PASSWORD'] ) . '@' . $config['DB_HOST'] . '/' . $config['DB_NAME'] );
		unset( $config );
		$code = sprintf(
			'define("SSM_DB_CONFIG_STANDALONE", true); require %s;'
			. ' $o = (new SSM_DB_Config_Refresh_Limiter(null, 1.0, %s))->refresh(); echo $o["fetched"] ? "fetched" : "skipped";',
			var_export( SSM_DB_CONFIG_LIMITER_FILE, true ),
			var_export( $this->dir, true )
		);
		$this->assertSame( 'fetched', shell_exec( self::php_command( $code ) ) );
		$other = json_decode( (string) file_get_contents( $this->limiter()->state_file() ), true );
		$this->assertSame( $mine + 1, $other['version'] );

		$outcome = $this->limiter()->refresh();
		$this->assertTrue( $outcome['fetched'] );
		$this->assertGreaterThan( 0.0, $outcome['waited_ms'] );
		$this->assertGreaterThanOrEqual( 1.0, microtime( true ) - $other['time'] );
		$this->assertSame( $mine + 1, ssm_db_config_status()['version'] );
	}

	private static function php_command( string $code ): string {
		return escapeshellarg( PHP_BINARY ) . ' -d ' . escapeshellarg( 'extension=' . self::extension_path() )
			. ' -d ' . escapeshellarg( 'ssm_db_config.parameter=' . ini_get( 'ssm_db_config.parameter' ) )
			. ' -r ' . escapeshellarg( $code );
	}

	private static function extension_path(): string {
		$path = (string) getenv( 'SO' );
		if ( ! is_file( $path ) ) {
			throw new RuntimeException( 'SO must name the extension' );
		}
		return $path;
	}
}
