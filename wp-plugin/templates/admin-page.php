<?php
/**
 * Tools → Database Config. Prints $report; decides nothing.
 *
 * @package SsmDbConfig
 *
 * @var SSM_DB_Config_Report $report    What to show.
 * @var array                $installed Drop-in name => install time, from this plugin's option.
 * @var string               $page_url  This page's URL.
 * @var string|null          $dropins_refusal Why drop-ins cannot be changed here, or null.
 * @var bool                 $show_identity   Whether to show the database host and user.
 */

defined( 'ABSPATH' ) || exit;

$ssm_ext    = $report->extension;
$ssm_status = $ssm_ext->status;
$ssm_error  = is_array( $ssm_status['last_error'] ?? null ) ? $ssm_status['last_error'] : null;
$ssm_probe  = $report->connectivity;
?>
<div class="wrap" id="ssm-db-config">
	<h1><?php echo esc_html__( 'Database Config', 'ssm-db-config' ); ?></h1>

	<?php if ( null !== $report->action ) : ?>
		<div id="ssm-db-config-action" class="notice <?php echo esc_attr( $report->action->ok ? 'notice-success' : 'notice-error' ); ?>" data-code="<?php echo esc_attr( $report->action->code ); ?>">
			<p><?php echo esc_html( SSM_DB_Config_Labels::action( $report->action ) ); ?></p>
		</div>
	<?php endif; ?>

	<h2><?php echo esc_html__( 'Extension', 'ssm-db-config' ); ?></h2>
	<?php if ( ! $ssm_ext->loaded ) : ?>
		<div id="ssm-db-config-not-loaded" class="notice notice-warning inline">
			<p><?php echo esc_html__( 'The ssm_db_config PHP extension is not loaded, so WordPress does not take its database settings from SSM Parameter Store.', 'ssm-db-config' ); ?></p>
			<p><?php echo esc_html__( 'To install it: copy libssm_db_config.so into PHP\'s extension folder, add "extension=ssm_db_config" and "ssm_db_config.parameter = /your/parameter" to php.ini (for example /etc/php/8.2/mods-available/ssm_db_config.ini, enabled with phpenmod), restart php-fpm, and replace the DB_* defines in wp-config.php with one call, ssm_db_config_define().', 'ssm-db-config' ); ?></p>
		</div>
	<?php else : ?>
		<table class="widefat striped" id="ssm-db-config-status">
			<tbody>
				<tr><th scope="row"><?php echo esc_html__( 'Version', 'ssm-db-config' ); ?></th><td data-field="version"><?php echo esc_html( (string) $ssm_ext->version ); ?></td></tr>
				<tr><th scope="row"><?php echo esc_html__( 'PHP process', 'ssm-db-config' ); ?></th><td data-field="pid"><?php echo esc_html( (string) ( $ssm_status['pid'] ?? '' ) ); ?></td></tr>
				<tr><th scope="row"><?php echo esc_html__( 'Parameter', 'ssm-db-config' ); ?></th><td data-field="parameter"><code><?php echo esc_html( (string) ( $ssm_status['parameter'] ?? '' ) ); ?></code></td></tr>
				<tr><th scope="row"><?php echo esc_html__( 'Region', 'ssm-db-config' ); ?></th><td data-field="region"><?php echo esc_html( (string) ( $ssm_status['region'] ?? '' ) ); ?></td></tr>
				<?php if ( ! empty( $ssm_status['endpoint_url'] ) ) : ?>
				<tr><th scope="row"><?php echo esc_html__( 'Endpoint', 'ssm-db-config' ); ?></th><td data-field="endpoint_url"><?php echo esc_html( (string) $ssm_status['endpoint_url'] ); ?></td></tr>
				<?php endif; ?>
				<tr><th scope="row"><?php echo esc_html__( 'SSM parameter version', 'ssm-db-config' ); ?></th><td data-field="ssm_version"><?php echo esc_html( (string) ( $ssm_status['version'] ?? '—' ) ); ?></td></tr>
				<tr><th scope="row"><?php echo esc_html__( 'Cache', 'ssm-db-config' ); ?></th><td data-field="freshness" data-code="<?php echo esc_attr( $ssm_ext->freshness ); ?>"><?php echo esc_html( SSM_DB_Config_Labels::freshness( $ssm_ext->freshness, $ssm_status ) ); ?></td></tr>
				<tr><th scope="row"><?php echo esc_html__( 'Cache age / TTL', 'ssm-db-config' ); ?></th><td data-field="age"><?php echo esc_html( null === ( $ssm_status['age_seconds'] ?? null ) ? '—' : sprintf( '%.1f s', (float) $ssm_status['age_seconds'] ) ); ?> / <?php echo esc_html( sprintf( '%d s', (int) ( $ssm_status['ttl_seconds'] ?? 0 ) ) ); ?></td></tr>
				<tr>
					<th scope="row"><?php echo esc_html__( 'Hits / misses / fetches / errors', 'ssm-db-config' ); ?></th>
					<td>
						<span data-field="hits"><?php echo esc_html( (string) (int) ( $ssm_status['hits'] ?? 0 ) ); ?></span> /
						<span data-field="misses"><?php echo esc_html( (string) (int) ( $ssm_status['misses'] ?? 0 ) ); ?></span> /
						<span data-field="fetches"><?php echo esc_html( (string) (int) ( $ssm_status['fetches'] ?? 0 ) ); ?></span> /
						<span data-field="errors"><?php echo esc_html( (string) (int) ( $ssm_status['errors'] ?? 0 ) ); ?></span>
					</td>
				</tr>
				<?php if ( array_key_exists( 'consecutive_failures', $ssm_status ) ) : ?>
				<tr><th scope="row"><?php echo esc_html__( 'Failed refreshes in a row', 'ssm-db-config' ); ?></th><td data-field="consecutive_failures">
					<?php
					echo esc_html( (string) (int) $ssm_status['consecutive_failures'] );
					if ( isset( $ssm_status['next_attempt_in_seconds'] ) ) {
						/* translators: %s: seconds */
						echo esc_html( ' ' . sprintf( __( '(next attempt in %s s)', 'ssm-db-config' ), number_format_i18n( (float) $ssm_status['next_attempt_in_seconds'], 1 ) ) );
					}
					?>
				</td></tr>
				<?php endif; ?>
				<?php if ( array_key_exists( 'shared_cache', $ssm_status ) ) : ?>
				<tr><th scope="row"><?php echo esc_html__( 'Host-wide cache', 'ssm-db-config' ); ?></th><td data-field="shared_cache" data-on="<?php echo esc_attr( empty( $ssm_status['shared_cache'] ) ? '0' : '1' ); ?>">
					<?php
					echo esc_html(
						empty( $ssm_status['shared_cache'] )
							/* translators: %s: why the shared cache is off */
							? sprintf( __( 'Off: %s', 'ssm-db-config' ), (string) ( $ssm_status['shared_cache_note'] ?? '' ) )
							/* translators: 1: folder, 2: number of values taken from it */
							: sprintf( __( 'On (%1$s); %2$d values taken from it by this process', 'ssm-db-config' ), (string) ( $ssm_status['shared_dir'] ?? '' ), (int) ( $ssm_status['shared_hits'] ?? 0 ) )
					);
					?>
				</td></tr>
				<?php endif; ?>
				<tr><th scope="row"><?php echo esc_html__( 'Last fetch', 'ssm-db-config' ); ?></th><td data-field="last_fetch">
					<?php
					if ( isset( $ssm_status['last_fetch_time'] ) ) {
						echo esc_html( gmdate( 'Y-m-d H:i:s', (int) $ssm_status['last_fetch_time'] ) . ' UTC' );
						if ( isset( $ssm_status['last_fetch_duration_ms'] ) ) {
							echo esc_html( sprintf( ' (%.1f ms)', (float) $ssm_status['last_fetch_duration_ms'] ) );
						}
					} else {
						echo esc_html( '—' );
					}
					?>
				</td></tr>
				<tr><th scope="row"><?php echo esc_html__( 'Last error', 'ssm-db-config' ); ?></th><td data-field="last_error">
					<?php echo esc_html( null === $ssm_error ? __( 'None', 'ssm-db-config' ) : sprintf( '%s (%d): %s', (string) ( $ssm_error['kind'] ?? '' ), (int) ( $ssm_error['code'] ?? 0 ), (string) ( $ssm_error['message'] ?? '' ) ) ); ?>
				</td></tr>
			</tbody>
		</table>
		<form method="post" action="<?php echo esc_url( $page_url ); ?>" id="ssm-db-config-refresh">
			<?php wp_nonce_field( SSM_DB_Config_Admin_Page::nonce_action( 'refresh' ) ); ?>
			<input type="hidden" name="ssm_db_config_action" value="refresh" />
			<?php submit_button( __( 'Refresh now', 'ssm-db-config' ), 'secondary', 'submit', false ); ?>
		</form>
	<?php endif; ?>

	<h2><?php echo esc_html__( 'Database', 'ssm-db-config' ); ?></h2>
	<table class="widefat striped" id="ssm-db-config-database">
		<tbody>
			<tr><th scope="row"><?php echo esc_html__( 'Engine', 'ssm-db-config' ); ?></th><td data-field="engine"><?php echo esc_html( $report->database['engine'] ); ?></td></tr>
			<?php if ( $show_identity ) : ?>
			<tr><th scope="row"><?php echo esc_html__( 'Host', 'ssm-db-config' ); ?></th><td data-field="host"><?php echo esc_html( $report->database['host'] ); ?></td></tr>
			<tr><th scope="row"><?php echo esc_html__( 'User', 'ssm-db-config' ); ?></th><td data-field="user"><?php echo esc_html( $report->database['user'] ); ?></td></tr>
			<?php else : ?>
			<tr><th scope="row"><?php echo esc_html__( 'Host and user', 'ssm-db-config' ); ?></th><td data-field="identity-hidden"><?php echo esc_html__( 'Shown to network administrators only: they are the whole network\'s.', 'ssm-db-config' ); ?></td></tr>
			<?php endif; ?>
			<tr><th scope="row"><?php echo esc_html__( 'Database name', 'ssm-db-config' ); ?></th><td data-field="dbname"><?php echo esc_html( $report->database['name'] ); ?></td></tr>
			<?php if ( null !== $ssm_probe ) : ?>
			<tr>
				<th scope="row"><?php echo esc_html__( 'Live check', 'ssm-db-config' ); ?></th>
				<td data-field="connectivity" data-reason="<?php echo esc_attr( $ssm_probe->reason ); ?>">
					<?php echo esc_html( SSM_DB_Config_Labels::probe_reason( $ssm_probe->reason ) ); ?>
					<?php /* translators: %s: milliseconds */ echo esc_html( sprintf( __( '(%s ms)', 'ssm-db-config' ), number_format_i18n( $ssm_probe->latency_ms, 1 ) ) ); ?>
					<?php if ( $show_identity && null !== $ssm_probe->detail && '' !== $ssm_probe->detail ) : ?>
						<br /><code><?php echo esc_html( $ssm_probe->detail ); ?></code>
					<?php endif; ?>
				</td>
			</tr>
			<?php endif; ?>
		</tbody>
	</table>

	<h2><?php echo esc_html__( 'Following a failover', 'ssm-db-config' ); ?></h2>
	<p id="ssm-db-config-failover" data-mode="<?php echo esc_attr( $report->failover ); ?>"><?php echo esc_html( SSM_DB_Config_Labels::failover( $report->failover ) ); ?></p>
	<?php if ( null !== $dropins_refusal ) : ?>
		<div class="notice notice-info inline" id="ssm-db-config-dropins-refused" data-refusal="<?php echo esc_attr( $dropins_refusal ); ?>"><p><?php echo esc_html( SSM_DB_Config_Labels::dropins_refusal( $dropins_refusal ) ); ?></p></div>
	<?php elseif ( ! $report->writable ) : ?>
		<div class="notice notice-warning inline" id="ssm-db-config-not-writable"><p><?php echo esc_html__( 'wp-content is not writable by the web server: drop-ins cannot be installed from here. Copy them from the plugin\'s dropins/ folder by hand.', 'ssm-db-config' ); ?></p></div>
	<?php endif; ?>
	<table class="widefat striped" id="ssm-db-config-dropins">
		<tbody>
		<?php foreach ( $report->dropins as $ssm_name => $ssm_state ) : ?>
			<tr data-dropin="<?php echo esc_attr( $ssm_name ); ?>" data-state="<?php echo esc_attr( $ssm_state ); ?>">
				<th scope="row"><code><?php echo esc_html( 'wp-content/' . $ssm_name ); ?></code></th>
				<td>
					<?php echo esc_html( SSM_DB_Config_Labels::dropin_state( $ssm_state ) ); ?>
					<?php if ( SSM_DB_Config_Dropins::FOREIGN === $ssm_state && 'db.php' === $ssm_name ) : ?>
						<br /><?php echo esc_html__( 'This site already has a db.php from another plugin; install db-error.php to follow failovers.', 'ssm-db-config' ); ?>
					<?php endif; ?>
				</td>
				<td>
					<?php if ( null === $dropins_refusal && SSM_DB_Config_Dropins::FOREIGN !== $ssm_state ) : ?>
					<form method="post" action="<?php echo esc_url( $page_url ); ?>" class="ssm-db-config-dropin-form">
						<?php $ssm_verb = SSM_DB_Config_Dropins::OURS === $ssm_state ? 'remove' : 'install'; ?>
						<?php wp_nonce_field( SSM_DB_Config_Admin_Page::nonce_action( $ssm_verb, $ssm_name ) ); ?>
						<input type="hidden" name="ssm_db_config_action" value="<?php echo esc_attr( $ssm_verb ); ?>" />
						<input type="hidden" name="dropin" value="<?php echo esc_attr( $ssm_name ); ?>" />
						<?php
						submit_button(
							/* translators: %s: file name */
							sprintf( 'remove' === $ssm_verb ? __( 'Remove %s', 'ssm-db-config' ) : __( 'Install %s', 'ssm-db-config' ), $ssm_name ),
							'secondary',
							'submit',
							false,
							array( 'id' => 'ssm-db-config-' . $ssm_verb . '-' . sanitize_html_class( $ssm_name ) )
						);
						?>
					</form>
					<?php endif; ?>
				</td>
			</tr>
		<?php endforeach; ?>
		</tbody>
	</table>
</div>
