<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

use PHPUnit\Framework\TestCase;

/**
 * php-fpm as deployed: the extension loaded in the master, workers forked
 * from it, Debian's default clear_env = yes, AWS settings only in the
 * master's environment; requests over FastCGI.
 */
final class FpmTest extends TestCase
{
    private ?Fpm $fpm = null;

    protected function setUp(): void
    {
        Proxy::reset();
    }

    protected function tearDown(): void
    {
        $this->fpm?->stop();
        if ($this->fpm !== null) {
            self::assertStringNotContainsString((string) getenv('SSM_TEST_CANARY'), $this->fpm->logs(), 'no password in php-fpm logs');
        }
    }

    private static function page(): string
    {
        // What a request sees: the config (password as a hash), the worker's
        // own environment, and its counters.
        return <<<'PHP'
        <?php
        $c = ssm_db_config();
        $s = ssm_db_config_status();
        echo json_encode([
            'pid' => getmypid(), 'host' => $c['DB_HOST'], 'user' => $c['DB_USER'],
            'password_sha256' => hash('sha256', $c['DB_PASSWORD']),
            'fetches' => $s['fetches'],
            // Every AWS_* the worker can see: its environment, $_SERVER and
            // phpinfo() (the master's are given to the AWS SDK, not to it).
            'aws_visible' => array_values(array_filter(
                array_merge(array_keys(getenv()), array_keys($_SERVER), [(function () { ob_start(); phpinfo(INFO_ENVIRONMENT | INFO_VARIABLES); return ob_get_clean(); })()]),
                fn ($k) => str_contains((string) $k, 'AWS_')
            )),
        ]);
        PHP;
    }

    /** A fresh shared-cache directory, owned by the workers' user. */
    private static function sharedDir(string $prefix): string
    {
        $dir = sys_get_temp_dir() . "/$prefix-" . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        if (posix_geteuid() === 0) {
            chown($dir, 'nobody');
        }
        return $dir;
    }

    private static function removeDir(string $dir): void
    {
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    /**
     * `$concurrency` requests at a time for `$seconds`: every answer (JSON),
     * with `left`, the seconds of the load left when its batch was sent.
     *
     * @return list<array<string, mixed>>
     */
    private function load(string $script, int $concurrency, float $seconds): array
    {
        $answers = [];
        $until = microtime(true) + $seconds;
        while (($now = microtime(true)) < $until) {
            foreach ($this->fpm->requests($script, $concurrency) as $body) {
                $r = json_decode($body, true);
                self::assertIsArray($r, "a worker answered: $body");
                $answers[] = ['left' => $until - $now] + $r;
            }
        }
        return $answers;
    }

    /** @return list<string> the hosts served, each once */
    private static function hosts(array $answers): array
    {
        return array_values(array_unique(array_column($answers, 'host')));
    }

    /** @return array<int, int> per worker, the most fetches it reported */
    private static function fetchesByWorker(array $answers): array
    {
        $fetches = [];
        foreach ($answers as $a) {
            $fetches[$a['pid']] = max($fetches[$a['pid']] ?? 0, $a['fetches']);
        }
        return $fetches;
    }

    public function test_per_process_cache_with_cleared_env_fetches_once_per_worker(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/fpm/' . bin2hex(random_bytes(4));
        $canary = (string) getenv('SSM_TEST_CANARY');
        $moto->putParameter($name, 'mysql://wp:' . rawurlencode($canary) . '@fpm-db.internal:3306/wordpress');
        // The shared cache off: each worker fetches for itself, so each must
        // find the AWS settings the master captured.
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '60', 'ssm_db_config.shared_dir' => 'off'], Fpm::masterEnv(), 4);
        $script = $this->fpm->script('index.php', self::page());

        $byPid = [];
        for ($i = 0; $i < 40; $i++) {
            $r = json_decode($this->fpm->request($script), true);
            self::assertIsArray($r, 'request answered with JSON');
            self::assertSame('fpm-db.internal:3306', $r['host']);
            self::assertSame(hash('sha256', $canary), $r['password_sha256']);
            self::assertSame([], $r['aws_visible'], 'no AWS_* variable in the worker\'s getenv(), $_SERVER or phpinfo()');
            $byPid[$r['pid']] = $r['fetches'];
        }
        self::assertNotContains($this->fpm->masterPid(), array_keys($byPid), 'requests are served by workers');
        foreach ($byPid as $pid => $fetches) {
            self::assertSame(1, $fetches, "worker $pid fetched exactly once");
        }
        self::assertLessThanOrEqual(4, count($byPid));
        self::assertSame(count($byPid), Proxy::getParameterCalls(), 'one SSM request per worker per TTL');
    }

    /**
     * Requests to a pool whose master has only `$env` (no AWS keys) under
     * clear_env = yes: each answer, after checking the value and that no
     * AWS_* variable is visible to the worker.
     */
    private function serveWithCredentialsFrom(array $env): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/fpm-creds/' . bin2hex(random_bytes(4));
        $moto->putParameter($name, 'mysql://wp:pw@creds-db.internal:3306/wordpress');
        $base = ['PATH' => '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME' => '/nonexistent', 'AWS_EC2_METADATA_DISABLED' => 'true',
            'AWS_REGION' => 'us-east-1', 'AWS_ENDPOINT_URL' => Proxy::url()];
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name], $base + $env, 2);
        $script = $this->fpm->script('index.php', self::page());
        foreach ($this->fpm->requests($script, 2) as $body) {
            $r = json_decode($body, true);
            self::assertIsArray($r, "a worker answered: $body");
            self::assertSame('creds-db.internal:3306', $r['host']);
            self::assertSame([], $r['aws_visible'], 'no AWS_* variable in the worker');
        }
    }

    public function test_forced_refreshes_while_throttled_respect_the_hosts_backoff(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/throttled/' . bin2hex(random_bytes(4));
        $moto->putParameter($name, 'postgresql://wp:pw@before.internal:5432/shop');
        $dir = self::sharedDir('ssm-throttled');
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir], Fpm::masterEnv(), 8);
        $page = $this->fpm->script('index.php', self::page());
        $this->fpm->requests($page, 8);
        self::assertSame(1, Proxy::getParameterCalls());
        // SSM throttles every request from now on; every request of every
        // worker asks for a refresh, as the failover drop-ins do on a failed
        // connection, for two seconds.
        Proxy::reset();
        Proxy::fault('throttle');
        $refresh = $this->fpm->script('refresh.php', '<?php try { echo ssm_db_config_refresh()["DB_HOST"]; } catch (SsmDbConfigException $e) { echo "code ", $e->getCode(); }');
        $until = microtime(true) + 2.0;
        $answers = [];
        while (microtime(true) < $until) {
            foreach ($this->fpm->requests($refresh, 8) as $body) {
                $answers[$body] = ($answers[$body] ?? 0) + 1;
            }
        }
        // The one refresh that asked throws the throttle (the drop-ins catch
        // it); every other one is served the cached value without asking.
        self::assertSame(1, $answers['code ' . \SsmDbConfigException::THROTTLED] ?? 0, json_encode($answers));
        self::assertGreaterThan(40, $answers['before.internal:5432'] ?? 0, json_encode($answers));
        $served = array_sum($answers);
        // The first refresh asks and is throttled; the host then backs off
        // (at least 2.5 s after a throttle): no other request reaches SSM.
        self::assertSame(1, Proxy::getParameterCalls(), "$served forced refreshes, one request to SSM");
        $this->fpm->stop();
        self::removeDir($dir);
    }

    public function test_ecs_container_credentials_work_under_clear_env(): void
    {
        $ecs = ContainerCredentials::start();
        try {
            $this->serveWithCredentialsFrom([
                'AWS_CONTAINER_CREDENTIALS_FULL_URI' => $ecs->url, 'AWS_CONTAINER_AUTHORIZATION_TOKEN' => $ecs->token,
            ]);
            self::assertGreaterThanOrEqual(1, $ecs->hits(), 'the worker asked the container endpoint');
            self::assertArrayHasKey(ContainerCredentials::ACCESS_KEY_ID, Proxy::callsByAccessKey(), 'SSM was called with its credentials');
        } finally {
            $ecs->stop();
        }
    }

    public function test_eks_web_identity_credentials_work_under_clear_env(): void
    {
        $token = sys_get_temp_dir() . '/ssm-web-identity-' . bin2hex(random_bytes(4));
        file_put_contents($token, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDp3cCJ9.c2ln');
        chmod($token, 0644);
        try {
            $this->serveWithCredentialsFrom([
                'AWS_WEB_IDENTITY_TOKEN_FILE' => $token, 'AWS_ROLE_ARN' => 'arn:aws:iam::123456789012:role/wordpress',
                'AWS_ROLE_SESSION_NAME' => 'wordpress',
            ]);
            $keys = array_keys(Proxy::callsByAccessKey());
            self::assertNotContains('testing', $keys, 'no request signed with the test keys');
            self::assertNotSame([], array_filter($keys, fn ($k) => str_starts_with($k, 'ASIA')), 'SSM was called with the role\'s temporary credentials');
        } finally {
            unlink($token);
        }
    }

    public function test_preload_in_master_then_workers_fetch_without_hanging(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/preload/' . bin2hex(random_bytes(4));
        $moto->putParameter($name, 'postgresql://wp:pw@preloaded.internal:5432/wordpress');
        $dir = sys_get_temp_dir() . '/ssm-preload-' . bin2hex(random_bytes(4));
        mkdir($dir, 0777);
        chmod($dir, 0777);
        // Runs in the master (not root) before the fork: builds a runtime and a
        // client there, which the workers inherit.
        file_put_contents("$dir/preload.php", '<?php $c = ssm_db_config(); file_put_contents(__DIR__ . "/preload.out", getmypid() . " " . $c["DB_HOST"]);');
        chmod("$dir/preload.php", 0644);
        $this->fpm = Fpm::start([
            'ssm_db_config.parameter' => $name,
            'opcache.enable' => '1',
            'opcache.preload' => "$dir/preload.php",
            // Off, so that every worker fetches for itself (the case that hangs
            // when a worker uses what it inherited from the master).
            'ssm_db_config.shared_dir' => 'off',
        ], ['AWS_ENDPOINT_URL' => str_replace('127.0.0.1', 'localhost', (string) getenv('AWS_ENDPOINT_URL'))] + Fpm::masterEnv(), 4);
        // "localhost" (not 127.0.0.1) makes the client resolve the name on the
        // runtime's blocking pool, whose threads do not survive a fork.
        $script = $this->fpm->script('refresh.php', '<?php $r = ssm_db_config_refresh(); $c = ssm_db_config(); $s = ssm_db_config_status(); echo json_encode(["pid" => getmypid(), "host" => $c["DB_HOST"], "fetches" => $s["fetches"]]);');

        [$preloadPid, $preloadHost] = explode(' ', (string) @file_get_contents("$dir/preload.out")) + [0, ''];
        self::assertSame($this->fpm->masterPid(), (int) $preloadPid, 'preload ran in the master');
        self::assertSame('preloaded.internal:5432', $preloadHost);

        usleep(1_100_000); // past the refresh rate limit, so each worker's first refresh fetches
        $pids = [];
        for ($round = 0; $round < 5; $round++) {
            // Four at once, so that every worker fetches at the same time. A
            // worker that used the inherited runtime (and its pooled
            // connection, shared with its siblings) would hang or read a
            // sibling's answer: each request has 10 s, a fetch 2 s.
            foreach ($this->fpm->requests($script, 4, 10) as $body) {
                $r = json_decode($body, true);
                self::assertIsArray($r, 'worker answered');
                self::assertSame('preloaded.internal:5432', $r['host']);
                $pids[$r['pid']] = true;
            }
        }
        self::assertNotContains($this->fpm->masterPid(), array_keys($pids));
        self::assertGreaterThanOrEqual(1 + count($pids), Proxy::getParameterCalls(), 'the master fetched, then every worker');
        array_map('unlink', glob("$dir/*"));
        rmdir($dir);
    }

    public function test_shared_cache_one_fetch_per_host_encrypted_0600(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/shared/' . bin2hex(random_bytes(4));
        $canary = (string) getenv('SSM_TEST_CANARY');
        $moto->putParameter($name, 'postgresql://wp:' . rawurlencode($canary) . '@shared-db.internal:5432/shop');
        $dir = self::sharedDir('ssm-shared');
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir], Fpm::masterEnv(), 8);
        $script = $this->fpm->script('index.php', self::page());
        $pids = [];
        for ($round = 0; $round < 10; $round++) {
            foreach ($this->fpm->requests($script, 8) as $body) {
                $r = json_decode($body, true);
                self::assertIsArray($r, 'worker answered');
                self::assertSame('shared-db.internal:5432', $r['host']);
                self::assertSame(hash('sha256', $canary), $r['password_sha256']);
                $pids[$r['pid']] = true;
            }
        }
        self::assertGreaterThan(1, count($pids), 'several workers served');
        self::assertSame(1, Proxy::getParameterCalls(), 'one SSM request for the whole host');

        // Refreshes from every worker at once (as the failover drop-ins make
        // them): one fetch per second for the whole host.
        usleep(1_100_000);
        $refresh = $this->fpm->script('refresh.php', '<?php echo ssm_db_config_refresh()["DB_HOST"];');
        foreach ($this->fpm->requests($refresh, 8) as $body) {
            self::assertSame('shared-db.internal:5432', $body);
        }
        self::assertSame(2, Proxy::getParameterCalls(), 'eight refreshes, one fetch');
        $files = glob("$dir/*");
        self::assertNotEmpty($files);
        foreach ($files as $file) {
            self::assertSame(0600, fileperms($file) & 0777, basename($file) . ' is 0600');
            self::assertStringNotContainsString($canary, (string) file_get_contents($file));
            self::assertStringNotContainsString('shared-db', (string) file_get_contents($file), 'nothing in plaintext');
        }
        $this->fpm->stop();
        self::removeDir($dir);
    }

    /**
     * Refresh-ahead stays with one worker of the host (the one that refreshed
     * last), so that one worker holds what a fetch leaves in memory; when it
     * dies, another takes the role within the grace and the value keeps
     * being refreshed.
     */
    public function test_one_worker_refreshes_for_the_host_and_another_takes_over_when_it_dies(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/refresher/' . bin2hex(random_bytes(4));
        $moto->putParameter($name, 'postgresql://wp:pw@refresher.internal:5432/shop');
        $dir = self::sharedDir('ssm-refresher');
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir, 'ssm_db_config.ttl' => '1'], Fpm::masterEnv(), 4);
        // Slow enough that eight requests at once keep all four workers busy.
        $script = $this->fpm->script('index.php', <<<'PHP'
        <?php
        $c = ssm_db_config();
        usleep(100_000);
        echo json_encode(['pid' => getmypid(), 'host' => $c['DB_HOST'], 'fetches' => ssm_db_config_status()['fetches']]);
        PHP);

        $started = microtime(true);
        $answers = $this->load($script, 8, 4.5);
        $elapsed = microtime(true) - $started;
        self::assertSame(['refresher.internal:5432'], self::hosts($answers));
        $fetches = self::fetchesByWorker($answers);
        self::assertCount(4, $fetches, 'all four workers served');
        $refreshers = array_keys(array_filter($fetches));
        self::assertCount(1, $refreshers, 'one worker fetched for the host: ' . json_encode($fetches));
        self::assertGreaterThanOrEqual(4, $fetches[$refreshers[0]], 'it refreshed ahead, TTL after TTL');
        $calls = Proxy::getParameterCalls();
        self::assertLessThanOrEqual((int) ceil($elapsed) + 1, $calls, 'at most one SSM request per TTL');

        posix_kill($refreshers[0], SIGKILL);
        $deadline = microtime(true) + 5;
        while (file_exists("/proc/{$refreshers[0]}") && microtime(true) < $deadline) {
            usleep(20_000); // until the master has reaped it (and forks another)
        }
        self::assertFileDoesNotExist("/proc/{$refreshers[0]}");
        $after = self::fetchesByWorker($this->load($script, 8, 3.5));
        unset($after[$refreshers[0]]);
        $taken = array_keys(array_filter($after));
        self::assertCount(1, $taken, 'one worker took the role: ' . json_encode($after));
        self::assertGreaterThanOrEqual($calls + 3, Proxy::getParameterCalls(), 'the value kept being refreshed');
        $this->fpm->stop();
        self::removeDir($dir);
    }

    /**
     * 8 workers, many requests, several TTLs: at most one SSM request per
     * TTL; while SSM answers 500, every request is still served (stale) and
     * the host asks once per backoff interval (plus the retries inside each
     * attempt); once SSM is back, the value is fresh again within a TTL.
     */
    public function test_eight_workers_over_several_ttls_and_a_failing_ssm(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/eight/' . bin2hex(random_bytes(4));
        $moto->putParameter($name, 'postgresql://wp:pw@eight.internal:5432/shop');
        $dir = self::sharedDir('ssm-eight');
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir,
            'ssm_db_config.ttl' => '1', 'ssm_db_config.timeout_ms' => '300'], Fpm::masterEnv(), 8);
        $script = $this->fpm->script('index.php', <<<'PHP'
        <?php
        $c = ssm_db_config();
        usleep(50_000);
        echo json_encode(['pid' => getmypid(), 'host' => $c['DB_HOST'], 'state' => ssm_db_config_status()['state']]);
        PHP);
        $started = microtime(true);
        $healthy = $this->load($script, 16, 5.0);
        $elapsed = microtime(true) - $started;
        self::assertCount(8, array_unique(array_column($healthy, 'pid')), 'all eight workers served');
        self::assertSame(['eight.internal:5432'], self::hosts($healthy));
        $calls = Proxy::getParameterCalls();
        self::assertGreaterThanOrEqual(3, $calls, 'refreshed TTL after TTL');
        self::assertLessThanOrEqual((int) ceil($elapsed) + 1, $calls, "at most one SSM request per TTL over $elapsed s");

        // SSM fails, and meanwhile the database moves: the old value is served.
        Proxy::fault('500');
        $moto->putParameter($name, 'postgresql://wp:pw@moved.internal:5432/shop');
        $failing = $this->load($script, 16, 3.0);
        $during = Proxy::getParameterCalls() - $calls;
        self::assertSame(['eight.internal:5432'], self::hosts($failing), 'the last good value, served while SSM fails');
        self::assertContains('stale', array_column($failing, 'state'));
        // Backoff after failures 1, 2, 3: at least 0.5, 1, 2 s, so in 3 s at
        // most 3 attempts for the host (4 with one that began as the load
        // ended), each at most 4 tries inside 300 ms.
        self::assertGreaterThanOrEqual(1, $during);
        self::assertLessThanOrEqual(16, $during, 'the host backs off, not one attempt per worker or request');
        $logged = substr_count($this->fpm->logs(), 'serving the last good value');
        self::assertGreaterThan(0, $logged);
        self::assertLessThanOrEqual(4, $logged, 'one log line per attempt, not per request');

        // SSM is back. The next attempt may be up to 4 s away (the backoff
        // after a third failure); after it, every worker serves the new value.
        Proxy::fault('none');
        $recovered = $this->load($script, 16, 6.0);
        $last = array_filter($recovered, fn ($a) => $a['left'] < 1.0);
        self::assertNotEmpty($last);
        self::assertSame(['moved.internal:5432'], self::hosts($last), 'the new value, from every worker, once SSM answers');
        self::assertContains('fresh', array_column($last, 'state'));
        $this->fpm->stop();
        self::removeDir($dir);
    }

    public function test_unwritable_shared_dir_falls_back_to_per_process_with_one_warning(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-db-config/noshare/' . bin2hex(random_bytes(4));
        $moto->putParameter($name, 'postgresql://wp:pw@fallback.internal:5432/shop');
        $dir = sys_get_temp_dir() . '/ssm-readonly-' . bin2hex(random_bytes(4));
        mkdir($dir, 0555); // not writable by the workers (nor owned by them)
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => "$dir/cache"], Fpm::masterEnv(), 2);
        $script = $this->fpm->script('index.php', self::page());
        $pids = [];
        for ($i = 0; $i < 10; $i++) {
            $r = json_decode($this->fpm->request($script), true);
            self::assertSame('fallback.internal:5432', $r['host']);
            $pids[$r['pid']] = true;
        }
        self::assertSame(count($pids), Proxy::getParameterCalls(), 'each worker fetched for itself');
        self::assertSame(count($pids), substr_count($this->fpm->logs(), 'shared cache directory cannot be used'), 'one warning per worker, not per request');
        rmdir($dir);
    }
}
