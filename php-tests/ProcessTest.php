<?php
declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * What one PHP process lets the code it runs cost, and what a crash of it
 * leaves behind: a bounded number of parameter names, failed names under
 * backoff, the shared directory swept of stopped masters' files, no core
 * dump holding the password, a fetch thread that died replaced.
 */
final class ProcessTest extends TestCase
{
    public function test_a_script_walking_many_names_is_refused_past_eight_besides_the_default(): void
    {
        $default = $this->parameterName('default');
        self::$moto->putParameter($default, 'mysql://u:p@default-host/d');
        $prefix = $this->parameterName('many');
        for ($i = 0; $i < 10; $i++) {
            self::$moto->putParameter("$prefix/$i", "mysql://u:p@host$i/d");
        }
        $r = PhpProcess::json(
            '$hosts = []; $refused = [];'
            . ' for ($i = 0; $i < 10; $i++) { try { $hosts[] = ssm_db_config("' . $prefix . '/$i")["DB_HOST"]; }'
            . ' catch (SsmDbConfigException $e) { $refused[$i] = [$e->getCode(), $e->getMessage()]; } }'
            . ' $result = ["hosts" => $hosts, "refused" => $refused, "again" => ssm_db_config("' . $prefix . '/0")["DB_HOST"],'
            . ' "default" => ssm_db_config()["DB_HOST"], "held" => ssm_db_config_status()["parameters_cached"]];',
            ['ssm_db_config.parameter' => $default]
        );
        self::assertSame(array_map(fn ($i) => "host$i:3306", range(0, 7)), $r['hosts']);
        self::assertSame([8, 9], array_keys($r['refused']));
        foreach ($r['refused'] as [$code, $message]) {
            self::assertSame(8, $code, 'BAD_CONFIGURATION');
            self::assertStringContainsString('already reads 8 SSM parameters besides ssm_db_config.parameter, the most ssm_db_config.max_parameters allows', $message);
            self::assertStringNotContainsString($prefix, $message, 'the name is not echoed');
        }
        self::assertSame('host0:3306', $r['again'], 'a name already read is still served');
        self::assertSame('default-host:3306', $r['default'], 'the default parameter is always read');
        self::assertSame(9, $r['held']);
        self::assertSame(9, Proxy::getParameterCalls(), 'no request for a refused name');
        $r = PhpProcess::json(
            'try { ssm_db_config("' . $prefix . '/0"); } catch (SsmDbConfigException $e) { $result = ["refused" => $e->getCode()]; }'
            . ' $result += ["host" => ssm_db_config()["DB_HOST"], "max" => ssm_db_config_status()["max_parameters"]];',
            ['ssm_db_config.parameter' => $default, 'ssm_db_config.max_parameters' => '0']
        );
        self::assertSame(['refused' => 8, 'host' => 'default-host:3306', 'max' => 0], array_intersect_key($r, ['refused' => 1, 'host' => 1, 'max' => 1]), 'max_parameters = 0: the default parameter only');
    }

    public function test_a_name_that_failed_is_under_backoff_and_not_asked_again_per_call(): void
    {
        $missing = $this->parameterName('missing');
        $r = PhpProcess::json(
            '$codes = []; for ($i = 0; $i < 20; $i++) { try { ssm_db_config("' . $missing . '"); } catch (SsmDbConfigException $e) { $codes[] = $e->getCode(); } }'
            . ' $result = ["codes" => array_values(array_unique($codes))];'
        );
        self::assertSame([1], $r['codes'], 'NOT_FOUND, every call');
        self::assertSame(1, Proxy::callsFor($missing), 'one request, then the backoff repeats the failure');
    }

    public function test_a_fetch_thread_that_could_not_start_its_runtime_is_replaced(): void
    {
        $name = $this->parameterName('thread');
        self::$moto->putParameter($name, 'mysql://u:p@thread-host/d');
        // With the open-file limit at the files already open, the fetch
        // thread cannot make its runtime's epoll descriptor and ends.
        $body = <<<'PHP'
            [$soft, $hard] = [posix_getrlimit()["soft openfiles"], posix_getrlimit()["hard openfiles"]];
            $open = count(scandir("/proc/self/fd")) - 3; // ".", ".." and scandir's own
            posix_setrlimit(POSIX_RLIMIT_NOFILE, $open, (int) $hard);
            try { ssm_db_config(); $first = "served"; } catch (SsmDbConfigException $e) { $first = $e->getCode(); }
            posix_setrlimit(POSIX_RLIMIT_NOFILE, (int) $soft, (int) $hard);
            $deadline = microtime(true) + 10;
            do {
                try { $host = ssm_db_config()["DB_HOST"]; } catch (SsmDbConfigException $e) { $host = $e->getMessage(); usleep(50_000); }
            } while ($host !== "thread-host:3306" && microtime(true) < $deadline);
            $result = ["first" => $first, "then" => $host];
            PHP;
        $r = PhpProcess::json($body, ['ssm_db_config.parameter' => $name]);
        self::assertNotSame('served', $r['first'], 'the limit stopped the first fetch');
        self::assertSame('thread-host:3306', $r['then'], 'a new thread fetched');
    }

    public function test_a_forced_refresh_takes_the_newer_value_another_worker_fetched_without_a_request(): void
    {
        $name = $this->parameterName('newer');
        self::$moto->putParameter($name, 'mysql://u:p@old-host/d');
        $dir = sys_get_temp_dir() . '/ssm-newer-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        if (posix_geteuid() === 0) {
            chown($dir, 'nobody');
        }
        $fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir, 'ssm_db_config.ttl' => '300'], Fpm::masterEnv(), 4);
        try {
            $get = $fpm->script('get.php', '<?php echo ssm_db_config()["DB_HOST"];');
            $refresh = $fpm->script('refresh.php', '<?php echo ssm_db_config_refresh()["DB_HOST"];');
            self::assertSame(['old-host:3306'], array_values(array_unique($fpm->requests($get, 16))));
            self::$moto->putParameter($name, 'mysql://u:p@new-host/d');
            // Past the host's one forced fetch a second: one worker refreshes (a fetch)...
            usleep(1_100_000);
            self::assertSame('new-host:3306', $fpm->request($refresh));
            $calls = Proxy::getParameterCalls();
            // ...and past the next second, the others' refreshes (as db.php makes them
            // when a connection to the old host fails) take what it fetched.
            usleep(1_100_000);
            $dropin = $fpm->script('dropin.php', '<?php $c = ssm_db_config(); if ($c["DB_HOST"] === "old-host:3306") { $c = ssm_db_config_refresh(); } echo $c["DB_HOST"];');
            self::assertSame(['new-host:3306'], array_values(array_unique($fpm->requests($dropin, 16))));
            self::assertSame($calls, Proxy::getParameterCalls(), 'no request: the host already has a newer value');
        } finally {
            $fpm->stop();
            array_map('unlink', glob("$dir/*") ?: []);
            rmdir($dir);
        }
    }

    public function test_the_stopped_masters_files_are_swept_from_the_shared_directory(): void
    {
        $name = $this->parameterName('sweep');
        self::$moto->putParameter($name, 'mysql://u:p@sweep-host/d');
        $dir = sys_get_temp_dir() . '/ssm-sweep-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        if (posix_geteuid() === 0) {
            chown($dir, 'nobody');
        }
        $page = '<?php echo ssm_db_config()["DB_HOST"];';
        $ids = [];
        for ($run = 0; $run < 2; $run++) {
            $fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.shared_dir' => $dir], Fpm::masterEnv(), 2);
            try {
                self::assertSame('sweep-host:3306', $fpm->request($fpm->script('index.php', $page)));
            } finally {
                $fpm->stop();
            }
            $ids[] = array_values(array_unique(array_map(fn ($f) => substr(basename($f), 0, 12), glob("$dir/*.entry") ?: [])));
        }
        self::assertCount(1, $ids[0], 'the first master wrote its entry');
        self::assertCount(1, $ids[1], "the second master's workers removed the first one's files: " . implode(',', $ids[1]));
        self::assertNotSame($ids[0], $ids[1], 'a restarted master has a new key');
        self::assertSame([], glob("$dir/{$ids[0][0]}*") ?: [], 'no file of the stopped master is left');
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    public function test_a_crash_after_a_fetch_dumps_no_core_holding_the_password(): void
    {
        $pattern = trim((string) @file_get_contents('/proc/sys/kernel/core_pattern'));
        if ($pattern === '' || $pattern[0] === '|' || str_contains($pattern, '/')) {
            self::markTestSkipped("core_pattern '$pattern' does not write cores into the crashing process's directory");
        }
        $name = $this->parameterName('core');
        self::$moto->putParameter($name, 'mysql://wp:' . rawurlencode(self::$canary) . '@core-host/d');
        $crash = function (string $code) use ($name): array {
            $dir = sys_get_temp_dir() . '/ssm-core-' . bin2hex(random_bytes(4));
            mkdir($dir, 0700);
            $cmd = ['sh', '-c', 'ulimit -c unlimited && exec "$@"', 'sh', PHP_BINARY, ...PhpProcess::extensionArgs(),
                '-d', "ssm_db_config.parameter=$name", '-r', $code . ' posix_kill(getmypid(), SIGABRT); sleep(5);'];
            $env = getenv();
            $proc = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, $dir, $env);
            stream_get_contents($pipes[1]);
            stream_get_contents($pipes[2]);
            $status = proc_close($proc);
            $cores = glob("$dir/core*") ?: [];
            $holds = false;
            foreach ($cores as $core) {
                $holds = $holds || str_contains((string) file_get_contents($core), self::$canary);
                unlink($core);
            }
            rmdir($dir);
            return ['cores' => count($cores), 'holds_password' => $holds, 'status' => $status];
        };
        // A PHP process that read nothing dumps core here: the machine writes cores.
        $control = $crash('ssm_db_config_status();');
        if ($control['cores'] === 0) {
            self::markTestSkipped('this machine writes no core files (core_pattern, a container\'s limits)');
        }
        $after = $crash('$c = ssm_db_config(); $p = $c["DB_PASSWORD"];');
        self::assertSame(0, $after['cores'], 'no core file after the process held the password');
        self::assertFalse($after['holds_password']);
    }
}
