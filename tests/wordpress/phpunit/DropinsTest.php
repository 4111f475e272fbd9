<?php
/**
 * SSM_DB_Config_Dropins in a content folder of its own.
 */
final class DropinsTest extends SSM_DB_Config_TestCase {
	private string $dir;
	private SSM_DB_Config_Dropins $dropins;

	protected function setUp(): void {
		$this->dir     = self::temp_dir();
		$this->dropins = new SSM_DB_Config_Dropins( $this->dir );
	}

	protected function tearDown(): void {
		self::remove_dir( $this->dir );
	}

	public function test_empty_content_folder_has_no_dropins_and_no_failover(): void {
		$this->assertSame( array( 'db.php' => 'absent', 'db-error.php' => 'absent' ), $this->dropins->states() );
		$this->assertSame( 'none', $this->dropins->failover_mode() );
		$this->assertTrue( $this->dropins->writable() );
	}

	public function test_install_copies_our_file_and_reports_it_ours(): void {
		$this->assertSame( array( 'ok' => true, 'code' => 'installed' ), $this->dropins->install( 'db.php' ) );
		$this->assertFileEquals( WP_PLUGIN_DIR . '/ssm-db-config/dropins/db.php', $this->dir . '/db.php' );
		$this->assertSame( 'ours', $this->dropins->state( 'db.php' ) );
		$this->assertSame( 'retry', $this->dropins->failover_mode() );
		$this->assertSame( array(), glob( $this->dir . '/.*.tmp' ), 'no temporary file is left' );
	}

	public function test_only_db_error_means_the_error_page_path(): void {
		$this->dropins->install( 'db-error.php' );
		$this->assertSame( 'error-page', $this->dropins->failover_mode() );
	}

	public function test_another_plugins_db_php_is_foreign_and_never_replaced(): void {
		file_put_contents( $this->dir . '/db.php', "<?php // PG4WP\n" );
		$this->assertSame( 'foreign', $this->dropins->state( 'db.php' ) );
		$this->assertSame( array( 'ok' => false, 'code' => 'foreign' ), $this->dropins->install( 'db.php' ) );
		$this->assertSame( array( 'ok' => false, 'code' => 'foreign' ), $this->dropins->remove( 'db.php' ) );
		$this->assertSame( "<?php // PG4WP\n", file_get_contents( $this->dir . '/db.php' ) );
		$this->assertSame( 'none', $this->dropins->failover_mode() );
		$this->dropins->install( 'db-error.php' );
		$this->assertSame( 'error-page', $this->dropins->failover_mode(), 'db-error.php works beside a foreign db.php' );
	}

	public function test_an_older_copy_of_ours_is_outdated_and_can_be_replaced(): void {
		file_put_contents( $this->dir . '/db-error.php', "<?php\n// " . SSM_DB_Config_Dropins::MARKER . " (old)\n" );
		$this->assertSame( 'outdated', $this->dropins->state( 'db-error.php' ) );
		$this->assertTrue( $this->dropins->install( 'db-error.php' )['ok'] );
		$this->assertSame( 'ours', $this->dropins->state( 'db-error.php' ) );
	}

	public function test_remove_deletes_ours(): void {
		$this->dropins->install( 'db-error.php' );
		$this->assertSame( array( 'ok' => true, 'code' => 'removed' ), $this->dropins->remove( 'db-error.php' ) );
		$this->assertFileDoesNotExist( $this->dir . '/db-error.php' );
	}

	public function test_unwritable_content_folder_is_reported_not_writable(): void {
		$missing = new SSM_DB_Config_Dropins( $this->dir . '/does-not-exist' );
		$this->assertFalse( $missing->writable() );
		$this->assertSame( array( 'ok' => false, 'code' => 'not_writable' ), $missing->install( 'db.php' ) );
	}

	public function test_unknown_name_is_refused_before_touching_a_path(): void {
		$this->expectException( InvalidArgumentException::class );
		$this->dropins->install( '../wp-config.php' );
	}

	public function test_shipped_dropins_carry_the_marker_and_are_valid_php(): void {
		foreach ( SSM_DB_Config_Dropins::NAMES as $name ) {
			$file = WP_PLUGIN_DIR . '/ssm-db-config/dropins/' . $name;
			$this->assertStringContainsString( SSM_DB_Config_Dropins::MARKER, (string) file_get_contents( $file ) );
			exec( escapeshellarg( PHP_BINARY ) . ' -l ' . escapeshellarg( $file ) . ' 2>&1', $out, $status );
			$this->assertSame( 0, $status, implode( "\n", $out ) );
		}
	}
}
