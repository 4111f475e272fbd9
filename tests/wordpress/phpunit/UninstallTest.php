<?php
/**
 * uninstall.php removes the plugin's option and its own drop-ins, and nothing else.
 */
final class UninstallTest extends SSM_DB_Config_TestCase {
	public function test_uninstall_removes_option_and_our_dropins_but_not_a_foreign_one(): void {
		$dropins = new SSM_DB_Config_Dropins( WP_CONTENT_DIR );
		$this->assertSame( array( 'db.php' => 'absent', 'db-error.php' => 'absent' ), $dropins->states(), 'the site starts without drop-ins' );
		$this->assertTrue( $dropins->install( 'db-error.php' )['ok'] );
		file_put_contents( WP_CONTENT_DIR . '/db.php', "<?php // another plugin's db.php\n" );
		update_option( 'ssm_db_config_installed_dropins', array( 'db-error.php' => time() ) );
		try {
			if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
				define( 'WP_UNINSTALL_PLUGIN', 'ssm-db-config/ssm-db-config.php' );
			}
			include WP_PLUGIN_DIR . '/ssm-db-config/uninstall.php';
			$this->assertFalse( get_option( 'ssm_db_config_installed_dropins' ) );
			$this->assertFileDoesNotExist( WP_CONTENT_DIR . '/db-error.php' );
			$this->assertFileExists( WP_CONTENT_DIR . '/db.php' );
		} finally {
			@unlink( WP_CONTENT_DIR . '/db.php' );
			@unlink( WP_CONTENT_DIR . '/db-error.php' );
		}
	}
}
