<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * Talks to moto directly (uncounted) with AWS's JSON and query protocols;
 * moto routes on the service named in the Authorization header's scope and
 * does not check signatures unless started with authentication enabled.
 */
final class Moto
{
    public function __construct(public readonly string $url, private string $accessKey = 'testing', private string $region = 'us-east-1')
    {
    }

    /** The same moto, addressed in another region (moto keeps parameters per region). */
    public function inRegion(string $region): self
    {
        return new self($this->url, $this->accessKey, $region);
    }

    public static function fromEnv(): self
    {
        return new self((string) getenv('MOTO_URL'));
    }

    /** @return array<mixed> */
    public function json(string $service, string $target, array $body): array
    {
        [$status, $text] = $this->post(
            $service,
            ["X-Amz-Target: $target", 'Content-Type: application/x-amz-json-1.1'],
            json_encode($body, JSON_THROW_ON_ERROR)
        );
        $data = json_decode($text, true) ?? [];
        if ($status >= 300) {
            throw new \RuntimeException("$target failed with HTTP $status: " . ($data['__type'] ?? '') . ' ' . ($data['message'] ?? $data['Message'] ?? ''));
        }
        return $data;
    }

    /** Query protocol (IAM). Returns the XML body. */
    public function query(string $service, array $params): string
    {
        [$status, $text] = $this->post($service, ['Content-Type: application/x-www-form-urlencoded'], http_build_query($params));
        if ($status >= 300) {
            throw new \RuntimeException("{$params['Action']} failed with HTTP $status");
        }
        return $text;
    }

    /** @return array{int, string} */
    private function post(string $service, array $headers, string $body): array
    {
        $headers[] = "Authorization: AWS4-HMAC-SHA256 Credential={$this->accessKey}/20260101/{$this->region}/$service/aws4_request, SignedHeaders=host, Signature=0";
        $context = stream_context_create(['http' => [
            'method' => 'POST', 'header' => implode("\r\n", $headers), 'content' => $body,
            'ignore_errors' => true, 'timeout' => 10,
        ]]);
        $text = file_get_contents($this->url . '/', false, $context);
        $status = (int) explode(' ', $http_response_header[0] ?? 'HTTP/1.1 0')[1];
        return [$status, (string) $text];
    }

    public function putParameter(string $name, string $value, string $type = 'SecureString'): int
    {
        return (int) $this->json('ssm', 'AmazonSSM.PutParameter', ['Name' => $name, 'Value' => $value, 'Type' => $type, 'Overwrite' => true])['Version'];
    }

    public function labelParameter(string $name, int $version, string $label): void
    {
        $this->json('ssm', 'AmazonSSM.LabelParameterVersion', ['Name' => $name, 'ParameterVersion' => $version, 'Labels' => [$label]]);
    }

    public function createSecret(string $name, string $value): void
    {
        $this->json('secretsmanager', 'secretsmanager.CreateSecret', ['Name' => $name, 'SecretString' => $value]);
    }

    public function putSecretValue(string $name, string $value): void
    {
        $this->json('secretsmanager', 'secretsmanager.PutSecretValue', ['SecretId' => $name, 'SecretString' => $value]);
    }
}

/** A moto server of a test's own, e.g. with IAM authentication switched on. */
final class MotoServer
{
    /** @var resource */
    private $proc;
    public Moto $client;

    /** @param array<string, string> $env extra environment for moto */
    public function __construct(array $env)
    {
        $port = Fpm::freePort();
        $python = (string) (getenv('SSM_TEST_PYTHON') ?: 'python3');
        $this->proc = proc_open(
            [$python, '-m', 'moto.server', '-H', '127.0.0.1', '-p', (string) $port],
            [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']],
            $pipes,
            sys_get_temp_dir(),
            $env + getenv()
        );
        $this->client = new Moto("http://127.0.0.1:$port");
        $deadline = microtime(true) + 30;
        while (@file_get_contents($this->client->url . '/moto-api/') === false) {
            if (microtime(true) > $deadline) {
                throw new \RuntimeException('moto did not start');
            }
            usleep(100_000);
        }
    }

    public function stop(): void
    {
        $status = proc_get_status($this->proc);
        if ($status['running']) {
            posix_kill($status['pid'], SIGTERM);
        }
        proc_close($this->proc);
    }
}

/** The counting and fault-injecting proxy in front of moto (tests/support/stack.py). */
final class Proxy
{
    public static function url(): string
    {
        return (string) getenv('PROXY_URL');
    }

    private static function call(string $method, string $path, ?array $body = null): string
    {
        $context = stream_context_create(['http' => [
            'method' => $method, 'content' => $body === null ? '' : json_encode($body),
            'header' => 'Content-Type: application/json', 'timeout' => 5,
        ]]);
        return (string) file_get_contents(self::url() . $path, false, $context);
    }

    public static function getParameterCalls(string $target = 'AmazonSSM.GetParameter'): int
    {
        $counts = json_decode(self::call('GET', '/__proxy/counts'), true);
        return (int) ($counts['by_target'][$target] ?? 0);
    }

    /** SSM GetParameter(s) requests for `$name` in `$region`, through the proxy. */
    public static function callsFor(string $name, string $region = 'us-east-1'): int
    {
        $counts = json_decode(self::call('GET', '/__proxy/counts'), true);
        return (int) ($counts['by_parameter']["$region $name"] ?? 0);
    }

    /** @return array<string, int> requests per signing access key id */
    public static function callsByAccessKey(): array
    {
        return json_decode(self::call('GET', '/__proxy/counts'), true)['by_access_key'] ?? [];
    }

    public static function reset(): void
    {
        self::call('POST', '/__proxy/reset', []);
    }

    public static function fault(string $mode, int $delayMs = 0): void
    {
        self::call('POST', '/__proxy/fault', ['mode' => $mode, 'delay_ms' => $delayMs]);
    }
}
