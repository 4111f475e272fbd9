<?php
/**
 * wp-config.php of docker/compose.yml's WordPress: the database settings come
 * from SSM (ssm_db_config.parameter, docker/wordpress/ssm-db-config.ini), the
 * rest from the container's environment. See README.md, "wp-config.php".
 */
ssm_db_config_define();
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );

foreach ( array( 'AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT' ) as $key ) {
	define( $key, getenv( 'WORDPRESS_' . $key ) ?: hash( 'sha256', $key . php_uname() . __FILE__ ) );
}
$table_prefix = 'wp_';
define( 'WP_DEBUG', (bool) getenv( 'WORDPRESS_DEBUG' ) );

if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
