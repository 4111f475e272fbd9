<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * What every test against moto needs: the moto client, the canary password,
 * a unique parameter name per test, and the proxy reset (counters and fault)
 * before and after each test.
 */
abstract class TestCase extends \PHPUnit\Framework\TestCase
{
    protected static Moto $moto;
    protected static string $canary;

    public static function setUpBeforeClass(): void
    {
        self::$moto = Moto::fromEnv();
        self::$canary = (string) getenv('SSM_TEST_CANARY');
    }

    protected function setUp(): void
    {
        Proxy::reset();
    }

    protected function tearDown(): void
    {
        Proxy::reset();
    }

    protected function parameterName(string $suffix): string
    {
        return '/test-db-config/' . bin2hex(random_bytes(4)) . '/' . $suffix;
    }
}
