<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * `ssm_db_config.define_constants`: the DB_* constants defined as each
 * request starts, before the script runs; in a php-fpm worker defined once
 * and kept across its requests, their values replaced when the value changes.
 */
final class DefineConstantsTest extends TestCase
{
    private ?Fpm $fpm = null;

    protected function tearDown(): void
    {
        if ($this->fpm !== null) {
            $this->fpm->stop();
            $logs = $this->fpm->logs();
            self::assertStringNotContainsString(self::$canary, $logs, 'no password in php-fpm logs');
            self::assertDoesNotMatchRegularExpression('/SIGSEGV|SIGABRT|SIGBUS/', $logs, 'no worker crashed');
        }
        parent::tearDown();
    }

    /** What a wp-config.php that calls ssm_db_config_define() sees, without the password. */
    private const PAGE = <<<'PHP'
    <?php
    $before = defined('DB_HOST');
    try {
        ssm_db_config_define();
        $error = null;
    } catch (SsmDbConfigException $e) {
        $error = ['code' => $e->getCode(), 'message' => $e->getMessage()];
    }
    $s = ssm_db_config_status();
    echo json_encode([
        'pid' => getmypid(), 'defined_before_the_script' => $before, 'error' => $error,
        'host' => defined('DB_HOST') ? DB_HOST : null, 'user' => defined('DB_USER') ? DB_USER : null,
        'password_sha256' => defined('DB_PASSWORD') ? hash('sha256', DB_PASSWORD) : null,
        'constants' => $s['define_constants_state'], 'state' => $s['state'],
    ]);
    PHP;

    public function test_constants_are_defined_before_the_script_and_the_call_finds_them(): void
    {
        $name = $this->parameterName('at-start');
        self::$moto->putParameter($name, 'mysql://wp:' . rawurlencode(self::$canary) . '@start.internal:3307/shop');
        $r = PhpProcess::json(
            '$before = ["DB_HOST" => DB_HOST, "DB_PORT" => DB_PORT, "DB_USER" => DB_USER, "DB_NAME" => DB_NAME, '
            . '"DB_ENGINE" => DB_ENGINE, "password_sha256" => hash("sha256", DB_PASSWORD)]; '
            . '$calls = ssm_db_config_status()["fetches"]; $returned = ssm_db_config_define(); ssm_db_config_define(); '
            . '$s = ssm_db_config_status(); '
            . '$result = $before + ["returned" => $returned, "fetches" => $s["fetches"], "fetches_before_the_call" => $calls, '
            . '"setting" => $s["define_constants"], "constants" => $s["define_constants_state"], '
            . '"same_as_array" => array_map("constant", array_keys(ssm_db_config())) === array_values(ssm_db_config())];',
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.define_constants' => 'on']
        );
        self::assertSame('start.internal:3307', $r['DB_HOST'] ?? $r);
        self::assertSame(3307, $r['DB_PORT']);
        self::assertSame('wp', $r['DB_USER']);
        self::assertSame('shop', $r['DB_NAME']);
        self::assertSame('mysql', $r['DB_ENGINE']);
        self::assertSame(hash('sha256', self::$canary), $r['password_sha256']);
        self::assertNull($r['returned'], 'ssm_db_config_define() finds them defined: nothing to do, twice');
        self::assertSame(1, $r['fetches_before_the_call'], 'fetched at request start');
        self::assertSame(1, $r['fetches'], 'the call and ssm_db_config() are served from the cache');
        self::assertTrue($r['setting']);
        self::assertSame('request', $r['constants'], 'the CLI defines them for its one request');
        self::assertTrue($r['same_as_array']);
        self::assertSame(1, Proxy::getParameterCalls());
        self::assertStringNotContainsString(self::$canary, $r['_stderr']);
    }

    public function test_off_by_default(): void
    {
        $name = $this->parameterName('default-off');
        self::$moto->putParameter($name, 'mysql://wp:pw@off.internal/shop');
        $r = PhpProcess::json('$s = ssm_db_config_status(); $result = ["defined" => defined("DB_HOST"), '
            . '"setting" => $s["define_constants"], "constants" => $s["define_constants_state"]];', ['ssm_db_config.parameter' => $name]);
        self::assertSame(['defined' => false, 'setting' => false, 'constants' => 'off'], array_diff_key($r, ['_stderr' => 0, '_seconds' => 0]));
        self::assertSame(0, Proxy::getParameterCalls(), 'nothing fetched before a call');
    }

    public function test_failure_at_request_start_is_thrown_by_the_call_without_asking_ssm_again(): void
    {
        $name = $this->parameterName('at-start-missing');
        $r = PhpProcess::json(
            '$before = defined("DB_HOST"); $calls = ssm_db_config_status()["ssm_requests"]; '
            . 'try { ssm_db_config_define(); $result = ["code" => null]; } catch (SsmDbConfigException $e) { '
            . '$result = ["code" => $e->getCode(), "message" => $e->getMessage(), "trace" => $e->getTraceAsString()]; } '
            . '$result += ["before" => $before, "calls_at_start" => $calls, "calls" => ssm_db_config_status()["ssm_requests"], '
            . '"constants" => ssm_db_config_status()["define_constants_state"], '
            . '"defined" => array_values(array_filter(["DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_ENGINE"], "defined"))];',
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.define_constants' => '1']
        );
        self::assertFalse($r['before']);
        self::assertSame(\SsmDbConfigException::NOT_FOUND, $r['code']);
        self::assertStringContainsString("\"$name\" was not found", $r['message']);
        self::assertSame([], $r['defined']);
        self::assertSame('failed', $r['constants']);
        self::assertSame($r['calls_at_start'], $r['calls'], 'the call threw what request start met, without a request of its own');
        self::assertSame(1, Proxy::getParameterCalls());
        self::assertSame(1, substr_count($r['_stderr'], 'was not found; nothing cached to serve'), 'logged once, by the fetch');
    }

    public function test_needs_a_parameter_and_an_on_or_off_value(): void
    {
        $out = PhpProcess::run('var_dump(defined("DB_HOST"), ssm_db_config_status()["define_constants"]);', ['ssm_db_config.define_constants' => '1']);
        self::assertStringContainsString('ssm_db_config.define_constants is on but ssm_db_config.parameter is not set', $out['stderr']);
        self::assertSame("bool(false)\nbool(false)\n", $out['stdout']);
        $out = PhpProcess::run(
            'var_dump(ssm_db_config_status()["define_constants"]);',
            ['ssm_db_config.parameter' => '/x', 'ssm_db_config.define_constants' => 'sometimes']
        );
        self::assertStringContainsString('ssm_db_config.define_constants = "sometimes" refused: it must be on or off (1 or 0); using the default', $out['stderr']);
        self::assertSame("bool(false)\n", $out['stdout']);
        self::assertFalse(@ini_set('ssm_db_config.define_constants', '1'), 'system-level like the others');
    }

    /**
     * php-fpm: each worker defines the constants once and keeps them; a new
     * value (the database moved, the password rotated) reaches every worker
     * within a TTL or two; workers that end after pm.max_requests exit cleanly.
     */
    public function test_fpm_workers_keep_the_constants_and_follow_a_new_value(): void
    {
        $name = $this->parameterName('fpm-kept');
        $canary = self::$canary;
        self::$moto->putParameter($name, 'postgresql://wp:' . rawurlencode($canary) . '@before.internal:5432/shop');
        $this->fpm = Fpm::start(['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '1', 'ssm_db_config.define_constants' => '1',
            'ssm_db_config.shared_dir' => 'off'], Fpm::masterEnv(), 2, 'pm.max_requests = 15');
        $script = $this->fpm->script('index.php', self::PAGE);
        $first = array_map(fn ($b) => json_decode($b, true), $this->fpm->requests($script, 4));
        foreach ($first as $r) {
            self::assertIsArray($r);
            self::assertTrue($r['defined_before_the_script'], 'defined as the request started');
            self::assertNull($r['error']);
            self::assertSame('before.internal:5432', $r['host']);
            self::assertSame(hash('sha256', $canary), $r['password_sha256']);
            self::assertSame('kept', $r['constants']);
        }

        $rotated = $canary . '-rotated';
        self::$moto->putParameter($name, 'postgresql://wp2:' . rawurlencode($rotated) . '@after.internal:5432/shop');
        $deadline = microtime(true) + 6;
        do {
            usleep(200_000);
            $batch = [];
            foreach ($this->fpm->requests($script, 2) as $body) {
                $r = json_decode($body, true);
                self::assertIsArray($r, $body);
                self::assertNull($r['error']);
                // One snapshot: never the new host with the old user or password.
                self::assertContains([$r['host'], $r['user'], $r['password_sha256']], [
                    ['before.internal:5432', 'wp', hash('sha256', $canary)],
                    ['after.internal:5432', 'wp2', hash('sha256', $rotated)],
                ]);
                $batch[$r['pid']] = $r['host'];
            }
        } while ($batch !== array_fill_keys(array_keys($batch), 'after.internal:5432') && microtime(true) < $deadline);
        self::assertSame(array_fill_keys(array_keys($batch), 'after.internal:5432'), $batch, 'the workers serve the new value');
        // Past pm.max_requests the workers end (module shutdown frees the
        // kept constants) and new ones start: still the new value.
        for ($i = 0; $i < 40; $i++) {
            $r = json_decode($this->fpm->request($script), true);
            self::assertSame('after.internal:5432', $r['host'] ?? null);
        }
        self::assertMatchesRegularExpression('/child \d+ exited with code 0/', $this->fpm->logs(), 'workers ended after pm.max_requests');
    }

    /**
     * A value past max_stale may not be served: the kept constants are
     * undefined, the call throws, and once SSM answers they are back.
     */
    public function test_fpm_constants_are_undefined_while_nothing_may_be_served(): void
    {
        $name = $this->parameterName('fpm-too-old');
        self::$moto->putParameter($name, 'postgresql://wp:' . rawurlencode(self::$canary) . '@old.internal:5432/shop');
        $this->fpm = Fpm::start(
            ['ssm_db_config.parameter' => $name, 'ssm_db_config.ttl' => '1', 'ssm_db_config.max_stale' => '0',
            'ssm_db_config.timeout_ms' => '300', 'ssm_db_config.define_constants' => '1', 'ssm_db_config.shared_dir' => 'off'],
            Fpm::masterEnv(),
            1
        );
        $script = $this->fpm->script('index.php', self::PAGE);
        $ok = json_decode($this->fpm->request($script), true);
        self::assertSame('old.internal:5432', $ok['host']);
        self::assertSame('kept', $ok['constants']);

        Proxy::fault('500');
        usleep(1_300_000); // past the TTL; max_stale 0: nothing may be served
        $failed = json_decode($this->fpm->request($script), true);
        self::assertFalse($failed['defined_before_the_script']);
        self::assertNull($failed['host'], 'no constant while the value may not be served');
        self::assertNull($failed['password_sha256']);
        self::assertSame(\SsmDbConfigException::SERVICE, $failed['error']['code'] ?? null);
        self::assertSame('failed', $failed['constants']);
        self::assertSame($ok['pid'], $failed['pid'], 'the same worker');

        Proxy::fault('none');
        $deadline = microtime(true) + 6;
        do {
            usleep(250_000);
            $back = json_decode($this->fpm->request($script), true);
        } while ($back['host'] === null && microtime(true) < $deadline);
        self::assertTrue($back['defined_before_the_script'], 'defined again once SSM answers');
        self::assertSame('old.internal:5432', $back['host']);
        self::assertSame('kept', $back['constants']);
        self::assertStringNotContainsString(self::$canary, json_encode([$ok, $failed, $back]));
    }
}
