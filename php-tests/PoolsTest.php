<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

use PHPUnit\Framework\TestCase;

/**
 * One php-fpm master serving several sites, one pool each, every setting of
 * ours given only by the pool's `php_admin_value` lines (applied by php-fpm
 * in each worker after the fork): each pool must get its own site's values,
 * never another pool's, and a bad pool value must be refused with a warning
 * while the php.ini value stays in effect.
 */
final class PoolsTest extends TestCase
{
    private ?Fpm $fpm = null;
    /** @var list<string> */
    private array $dirs = [];

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
        foreach ($this->dirs as $dir) {
            array_map('unlink', glob("$dir/*") ?: []);
            @rmdir($dir);
        }
    }

    /** The master's environment: AWS keys only; region and endpoint come from the pools. */
    private static function keysOnly(): array
    {
        return ['PATH' => '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME' => '/nonexistent', 'AWS_EC2_METADATA_DISABLED' => 'true',
            'AWS_ACCESS_KEY_ID' => (string) getenv('AWS_ACCESS_KEY_ID'), 'AWS_SECRET_ACCESS_KEY' => (string) getenv('AWS_SECRET_ACCESS_KEY')];
    }

    /** A private shared-cache directory for one pool's user. */
    private function sharedDir(string $user): string
    {
        $dir = sys_get_temp_dir() . '/ssm-pool-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        if (posix_geteuid() === 0) {
            chown($dir, $user);
        }
        $this->dirs[] = $dir;
        return $dir;
    }

    /** `user = ...` for a pool when the master runs as root; nothing otherwise. */
    private static function user(string $user): string
    {
        $group = $user === 'nobody' ? 'nogroup' : $user;
        return posix_geteuid() === 0 ? "user = $user\ngroup = $group\n" : '';
    }

    /** @param array<string, string> $values */
    private static function adminValues(array $values): string
    {
        $lines = '';
        foreach ($values as $k => $v) {
            $lines .= "php_admin_value[ssm_db_config.$k] = \"$v\"\n";
        }
        return $lines;
    }

    private static function page(): string
    {
        return <<<'PHP'
        <?php
        $atStart = defined('DB_HOST');
        if ($atStart) {
            [$host, $password, $name] = [DB_HOST, DB_PASSWORD, DB_NAME];
        } else {
            $c = ssm_db_config();
            [$host, $password, $name] = [$c['DB_HOST'], $c['DB_PASSWORD'], $c['DB_NAME']];
        }
        $s = ssm_db_config_status();
        ob_start();
        phpinfo(INFO_MODULES);
        $info = ob_get_clean();
        echo json_encode([
            'pid' => getmypid(), 'uid' => posix_geteuid(), 'host' => $host, 'name' => $name,
            'password_sha256' => hash('sha256', $password), 'defined_at_start' => $atStart,
            'ini' => array_map('ini_get', ['parameter' => 'ssm_db_config.parameter', 'region' => 'ssm_db_config.region',
                'ttl' => 'ssm_db_config.ttl', 'define_constants' => 'ssm_db_config.define_constants']),
            'ttl_seconds' => $s['ttl_seconds'], 'shared_dir' => $s['shared_dir'], 'shared_hits' => $s['shared_hits'],
            'constants' => $s['define_constants_state'], 'refused' => $s['ini_refused'],
            'phpinfo_parameter' => preg_match('~ssm_db_config\.parameter( => |</td><td class="v">)([^ <]*)~', $info, $m) ? $m[2] : null,
        ]);
        PHP;
    }

    /** @return list<array<string, mixed>> `$rounds` rounds of 4 requests at once to `$pool` */
    private function answers(string $script, string $pool, int $rounds): array
    {
        $answers = [];
        for ($i = 0; $i < $rounds; $i++) {
            foreach ($this->fpm->requests($script, 4, 10, $pool) as $body) {
                $r = json_decode($body, true);
                self::assertIsArray($r, "pool $pool answered: $body");
                $answers[] = $r;
            }
        }
        return $answers;
    }

    public function test_each_pool_gets_its_own_site_from_php_admin_value_only(): void
    {
        $moto = Moto::fromEnv();
        $id = bin2hex(random_bytes(4));
        $canary = (string) getenv('SSM_TEST_CANARY');
        // Site A and site C use the same parameter name in two regions (moto
        // keeps them apart, as SSM does): pools of one user that differ only
        // in region must not share a cache entry.
        $nameA = "/test-pools/$id/site-a/db";
        $nameB = "/test-pools/$id/site-b/db";
        $moto->putParameter($nameA, 'mysql://a_user:' . rawurlencode($canary) . "-a@a-db.internal:3306/site_a");
        $moto->putParameter($nameB, "mysql://b_user:pw-b@b-db.internal:3307/site_b");
        $moto->inRegion('eu-west-1')->putParameter($nameA, "mysql://c_user:pw-c@c-db.internal:3308/site_c");
        $proxy = Proxy::url();
        $dirNobody = $this->sharedDir('nobody');
        $dirWww = $this->sharedDir('www-data');

        $this->fpm = Fpm::startPools([], self::keysOnly(), [
            'site-a' => self::user('nobody') . self::adminValues(['parameter' => $nameA, 'region' => 'us-east-1',
                'endpoint_url' => $proxy, 'ttl' => '60', 'define_constants' => '1', 'shared_dir' => $dirNobody]),
            'site-b' => self::user('www-data') . self::adminValues(['parameter' => $nameB, 'region' => 'us-east-1',
                'endpoint_url' => $proxy, 'ttl' => '5', 'shared_dir' => $dirWww]),
            'site-c' => self::user('nobody') . self::adminValues(['parameter' => $nameA, 'region' => 'eu-west-1',
                'endpoint_url' => $proxy, 'ttl' => '30', 'shared_dir' => $dirNobody]),
        ]);
        $script = $this->fpm->script('index.php', self::page());

        $started = microtime(true);
        $a = $this->answers($script, 'site-a', 3);
        $b = $this->answers($script, 'site-b', 3);
        $c = $this->answers($script, 'site-c', 3);
        $elapsed = microtime(true) - $started;

        $expect = [
            'site-a' => [$a, 'a-db.internal:3306', 'site_a', hash('sha256', "$canary-a"), $nameA, '60', true],
            'site-b' => [$b, 'b-db.internal:3307', 'site_b', hash('sha256', 'pw-b'), $nameB, '5', false],
            'site-c' => [$c, 'c-db.internal:3308', 'site_c', hash('sha256', 'pw-c'), $nameA, '30', false],
        ];
        foreach ($expect as $pool => [$answers, $host, $db, $password, $name, $ttl, $atStart]) {
            foreach ($answers as $r) {
                self::assertSame($host, $r['host'], "$pool serves its own site's host");
                self::assertSame($db, $r['name'], "$pool serves its own database");
                self::assertSame($password, $r['password_sha256'], "$pool serves its own password");
                self::assertSame($name, $r['ini']['parameter'], "$pool: ini_get() shows the pool's value");
                self::assertSame($name, $r['phpinfo_parameter'], "$pool: phpinfo() shows the pool's value");
                self::assertSame($ttl, $r['ini']['ttl']);
                self::assertSame((int) $ttl, $r['ttl_seconds'], "$pool: the TTL in effect is the pool's");
                self::assertSame($atStart, $r['defined_at_start'], "$pool: define_constants as the pool sets it");
                self::assertSame($atStart ? 'kept' : 'off', $r['constants']);
                self::assertSame([], $r['refused']);
            }
        }
        if (posix_geteuid() === 0) {
            self::assertSame([posix_getpwnam('nobody')['uid']], array_values(array_unique(array_column($a, 'uid'))));
            self::assertSame([posix_getpwnam('www-data')['uid']], array_values(array_unique(array_column($b, 'uid'))));
        }

        // One SSM request per pool (its workers share it through the host's
        // cache); site B's TTL of 5 s may have refreshed once or twice.
        self::assertSame(1, Proxy::callsFor($nameA, 'us-east-1'), 'site A: one request');
        self::assertSame(1, Proxy::callsFor($nameA, 'eu-west-1'), 'site C: one request');
        $b = Proxy::callsFor($nameB, 'us-east-1');
        self::assertGreaterThanOrEqual(1, $b);
        self::assertLessThanOrEqual(1 + (int) ceil($elapsed / 4.65), $b, 'site B: at most one request per refresh-ahead interval');
        // Sites A and C share a directory (one user) but not an entry.
        self::assertCount(2, glob("$dirNobody/*.entry") ?: [], 'sites A and C: one entry each');
        self::assertCount(1, glob("$dirWww/*.entry") ?: [], 'site B: its own entry, in its own user\'s directory');
    }

    public function test_pools_whose_env_names_another_region_or_account_never_share_an_entry(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-pools/' . bin2hex(random_bytes(4)) . '/db';
        $moto->putParameter($name, 'mysql://wp:pw@us.internal:3306/us');
        $moto->inRegion('eu-west-1')->putParameter($name, 'mysql://wp:pw@eu.internal:3306/eu');
        $dir = $this->sharedDir('nobody');
        // One user, one parameter name, one php.ini: only the pools' env[] differ.
        $common = self::user('nobody') . self::adminValues(['parameter' => $name, 'endpoint_url' => Proxy::url(), 'shared_dir' => $dir]);
        $this->fpm = Fpm::startPools([], self::keysOnly() + ['AWS_REGION' => 'us-east-1'], [
            'eu' => $common . "env[AWS_REGION] = eu-west-1\n",
            'us' => $common,
            'other-account' => $common . "env[AWS_ACCESS_KEY_ID] = AKIAOTHERACCOUNT0001\n",
        ]);
        $script = $this->fpm->script('index.php', self::page());
        foreach (['eu' => 'eu.internal:3306', 'us' => 'us.internal:3306', 'other-account' => 'us.internal:3306'] as $pool => $host) {
            foreach ($this->answers($script, $pool, 1) as $r) {
                self::assertSame($host, $r['host'], "pool $pool");
            }
        }
        self::assertSame(1, Proxy::callsFor($name, 'eu-west-1'));
        self::assertSame(2, Proxy::callsFor($name, 'us-east-1'), 'the other account\'s pool asked for itself');
        self::assertArrayHasKey('AKIAOTHERACCOUNT0001', Proxy::callsByAccessKey());
        self::assertCount(3, glob("$dir/*.entry") ?: []);
    }

    public function test_a_php_value_from_the_web_server_cannot_change_a_pools_settings(): void
    {
        $moto = Moto::fromEnv();
        $id = bin2hex(random_bytes(4));
        $moto->putParameter("/test-pools/$id/mine", 'mysql://wp:pw@mine.internal:3306/mine');
        $moto->putParameter("/test-pools/$id/other", 'mysql://wp:pw@other.internal:3306/other');
        $this->fpm = Fpm::startPools([], self::keysOnly(), [
            'site' => "pm.max_children = 1\n" . self::user('nobody') . self::adminValues(['parameter' => "/test-pools/$id/mine",
                'region' => 'us-east-1', 'endpoint_url' => Proxy::url(), 'shared_dir' => 'off']),
        ]);
        $script = $this->fpm->script('index.php', self::page());
        foreach (['PHP_VALUE', 'PHP_ADMIN_VALUE'] as $param) {
            $r = json_decode($this->fpm->requests($script, 1, 10, 'site', [$param => "ssm_db_config.parameter=/test-pools/$id/other"])[0], true);
            self::assertIsArray($r);
            self::assertSame('mine.internal:3306', $r['host'], "$param is refused");
            self::assertStringContainsString('never from a PHP_VALUE or PHP_ADMIN_VALUE', implode("\n", $r['refused']));
            $r = json_decode($this->fpm->request($script, 10, 'site'), true);
            self::assertSame('mine.internal:3306', $r['host'], "and nothing sticks after $param");
            self::assertSame("/test-pools/$id/mine", $r['ini']['parameter']);
        }
    }

    public function test_pool_with_bad_values_is_warned_and_keeps_the_php_ini_values(): void
    {
        $moto = Moto::fromEnv();
        $name = '/test-pools/' . bin2hex(random_bytes(4)) . '/db';
        $moto->putParameter($name, 'mysql://wp:pw@ini-db.internal:3306/wordpress');
        $canary = (string) getenv('SSM_TEST_CANARY');
        $ini = ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '30', 'ssm_db_config.region' => 'us-east-1',
            'ssm_db_config.endpoint_url' => Proxy::url(), 'ssm_db_config.shared_dir' => 'off'];
        $this->fpm = Fpm::startPools($ini, self::keysOnly(), [
            'bad' => self::user('nobody') . self::adminValues(['ttl' => '0', 'region' => 'EU WEST', 'define_constants' => 'maybe'])
                // A URL pasted where the name belongs: refused, never echoed.
                . "php_admin_value[ssm_db_config.parameter] = \"mysql://wp:$canary@db/wp\"\n",
        ]);
        $script = $this->fpm->script('index.php', self::page());

        $r = json_decode($this->fpm->request($script, 10, 'bad'), true);
        self::assertIsArray($r);
        self::assertSame('ini-db.internal:3306', $r['host'], 'php.ini\'s parameter is still the one in effect');
        self::assertSame(['parameter' => $name, 'region' => 'us-east-1', 'ttl' => '30', 'define_constants' => '0'], $r['ini'], 'ini_get() shows the values in effect');
        self::assertSame(30, $r['ttl_seconds']);
        $refused = implode("\n", $r['refused']);
        self::assertStringContainsString('ssm_db_config.ttl = "0" refused: it must be an integer from 1 to 86400 (seconds); keeping "30"', $refused);
        self::assertStringContainsString('ssm_db_config.region = "EU WEST" refused', $refused);
        self::assertStringContainsString('ssm_db_config.define_constants = "maybe" refused: it must be on or off', $refused);
        self::assertStringContainsString('ssm_db_config.parameter = (value not shown) refused: it looks like a connection URL', $refused);
        self::assertStringNotContainsString($canary, $refused);
        $deadline = microtime(true) + 5;
        while (!str_contains($this->fpm->logs(), 'ssm_db_config.ttl = "0" refused') && microtime(true) < $deadline) {
            usleep(50_000);
        }
        self::assertStringContainsString('ssm_db_config.ttl = "0" refused', $this->fpm->logs(), 'the warning reaches the log');
    }
}
