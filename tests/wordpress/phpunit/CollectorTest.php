<?php
/**
 * SSM_DB_Config_Collector with the real extension and the site's database (MariaDB A).
 */
final class CollectorTest extends SSM_DB_Config_TestCase {
	private function collector(): SSM_DB_Config_Collector {
		return new SSM_DB_Config_Collector( new SSM_DB_Config_Dropins( WP_CONTENT_DIR ) );
	}

	public function test_extension_state_reports_loaded_version_and_freshness(): void {
		ssm_db_config();
		$state = $this->collector()->extension();
		$this->assertTrue( $state->loaded );
		$this->assertSame( ssm_db_config_status()['extension_version'], $state->version );
		$this->assertSame( '/wp/db', $state->status['parameter'] );
		$this->assertSame( 'fresh', $state->freshness );
		$this->assertTrue( $state->fresh );
	}

	public static function statuses(): array {
		$error = array( 'kind' => 'throttled', 'code' => 3, 'message' => 'x' );
		return array(
			'cached and fresh'       => array( array( 'cached' => true, 'fresh' => true, 'last_error' => null ), 'fresh' ),
			'cached past TTL'        => array( array( 'cached' => true, 'fresh' => false, 'last_error' => null ), 'stale' ),
			'cached, fetch failing'  => array( array( 'cached' => true, 'fresh' => false, 'last_error' => $error ), 'failing' ),
			'nothing cached'         => array( array( 'cached' => false, 'fresh' => false, 'last_error' => null ), 'not_cached' ),
			'nothing cached, failed' => array( array( 'cached' => false, 'fresh' => false, 'last_error' => $error ), 'failing' ),
			// Builds that report `state` (stale-if-error, refresh-ahead).
			'state fresh'            => array( array( 'state' => 'fresh', 'cached' => true, 'fresh' => true, 'last_error' => null ), 'fresh' ),
			'state refresh due'      => array( array( 'state' => 'refresh_due', 'cached' => true, 'fresh' => true, 'last_error' => null ), 'refresh_due' ),
			'state stale, serving'   => array( array( 'state' => 'stale', 'cached' => true, 'fresh' => false, 'last_error' => $error ), 'serving_stale' ),
			'state too old'          => array( array( 'state' => 'too_old', 'cached' => true, 'fresh' => false, 'last_error' => $error ), 'too_old' ),
			'state empty'            => array( array( 'state' => 'empty', 'cached' => false, 'fresh' => false, 'last_error' => null ), 'not_cached' ),
			'state empty, failed'    => array( array( 'state' => 'empty', 'cached' => false, 'fresh' => false, 'last_error' => $error ), 'failing' ),
		);
	}

	/** @dataProvider statuses */
	public function test_freshness_explains_the_cache_state( array $status, string $code ): void {
		$this->assertSame( $code, SSM_DB_Config_Collector::freshness( $status ) );
	}

	public function test_every_freshness_code_has_its_own_label(): void {
		$status = array( 'age_seconds' => 3.0, 'ttl_seconds' => 60, 'stale_reason' => 'SSM throttled the call', 'max_stale_seconds' => 86400 );
		$labels = array();
		foreach ( array( 'fresh', 'refresh_due', 'stale', 'serving_stale', 'too_old', 'not_cached', 'failing', 'not_loaded' ) as $code ) {
			$labels[ $code ] = SSM_DB_Config_Labels::freshness( $code, $status );
		}
		$this->assertCount( 8, array_unique( $labels ) );
		$this->assertStringContainsString( 'SSM throttled the call', $labels['serving_stale'] );
		// Past the TTL with a refresh in flight, and no error: not called a failure.
		$in_flight = SSM_DB_Config_Labels::freshness( 'serving_stale', array( 'stale_reason' => null ) + $status );
		$this->assertStringNotContainsString( 'failed', $in_flight );
		$this->assertStringContainsString( 'in the background', $in_flight );
	}

	public function test_refresh_fetches_once_and_reports_version_without_secret(): void {
		ssm_db_config();
		self::age_cached_value();
		$fetches = ssm_db_config_status()['fetches'];
		$before  = self::fetch_count();
		$result  = $this->collector()->refresh();
		$this->assertTrue( $result->ok );
		$this->assertSame( 'fetched', $result->code );
		$this->assertSame( ssm_db_config_status()['version'], $result->details['version'] );
		$this->assertSame( $fetches + 1, ssm_db_config_status()['fetches'] );
		$this->assertSame( 1, self::fetch_count() - $before );
		$this->assertNoCanary( $result, 'refresh result' );
	}

	public function test_second_refresh_within_a_second_says_whether_ssm_was_asked(): void {
		ssm_db_config();
		self::age_cached_value();
		$this->assertSame( 'fetched', $this->collector()->refresh()->code );
		$before = self::fetch_count();
		$second = $this->collector()->refresh();
		$this->assertTrue( $second->ok );
		if ( ! empty( ssm_db_config_status()['shared_cache'] ) ) {
			// With the host-wide cache, an answer less than a second old is reused.
			$this->assertSame( 'reused', $second->code );
			$this->assertSame( $before, self::fetch_count() );
		} else {
			// Without it (this CLI process), every refresh asks SSM.
			$this->assertSame( 'fetched', $second->code );
			$this->assertSame( $before + 1, self::fetch_count() );
		}
	}

	public function test_error_codes_map_to_the_extension_kinds(): void {
		$kinds = array( 1 => 'not_found', 2 => 'access_denied', 3 => 'throttled', 4 => 'timeout', 5 => 'network', 6 => 'invalid_value', 7 => 'no_credentials', 8 => 'bad_configuration', 9 => 'service' );
		foreach ( $kinds as $code => $kind ) {
			$this->assertSame( $kind, SSM_DB_Config_Collector::error_kind( $code ) );
		}
		$this->assertSame( 'unknown', SSM_DB_Config_Collector::error_kind( 42 ) );
		// The extension's own names agree.
		try {
			ssm_db_config( '/phpunit/does-not-exist' );
			$this->fail( 'a missing parameter throws' );
		} catch ( SsmDbConfigException $e ) {
			$this->assertSame( 'not_found', SSM_DB_Config_Collector::error_kind( $e->getCode() ) );
			$this->assertSame( 'not_found', ssm_db_config_status()['last_error']['kind'] );
		}
	}

	public function test_probe_finds_the_site_database_a_writer(): void {
		$result = $this->collector()->probe();
		$this->assertSame( SSM_DB_Config_Probe_Result::WRITER, $result->reason, (string) $result->detail );
		$this->assertSame( 'mysql', $result->engine );
	}

	public function test_report_names_host_and_user_but_never_the_password(): void {
		$report = $this->collector()->collect( true );
		$this->assertSame( DB_HOST, $report->database['host'] );
		$this->assertSame( 'wp', $report->database['user'] );
		$this->assertSame( 'mysql', $report->database['engine'] );
		$this->assertNoCanary( $report, 'report' );
		$this->assertArrayHasKey( 'db.php', $report->dropins );
	}
}
