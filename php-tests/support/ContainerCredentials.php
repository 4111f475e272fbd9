<?php

declare(strict_types=1);

namespace SsmDbConfig\Tests;

/**
 * The ECS container credentials endpoint (what the ECS agent and EKS Pod
 * Identity serve at AWS_CONTAINER_CREDENTIALS_FULL_URI): PHP's built-in web
 * server on a free loopback port, answering the agent's JSON to a request
 * that carries the authorization token, and 401 to any other. moto does not
 * serve this endpoint.
 */
final class ContainerCredentials
{
    public const ACCESS_KEY_ID = 'ASIAECSCONTAINER0001';
    public string $url;
    public string $token;
    private string $dir;
    /** @var resource */
    private $proc;

    public static function start(): self
    {
        $server = new self();
        $server->dir = sys_get_temp_dir() . '/ssm-ecs-' . bin2hex(random_bytes(4));
        mkdir($server->dir);
        $server->token = 'ecs-token-' . bin2hex(random_bytes(8));
        file_put_contents("$server->dir/router.php", '<?php
            header("Content-Type: application/json");
            if (($_SERVER["HTTP_AUTHORIZATION"] ?? "") !== ' . var_export($server->token, true) . ') {
                http_response_code(401);
                echo "{}";
                return;
            }
            file_put_contents(__DIR__ . "/hits", "x", FILE_APPEND);
            echo json_encode(["AccessKeyId" => ' . var_export(self::ACCESS_KEY_ID, true) . ', "SecretAccessKey" => "ecs-secret",
                "Token" => "ecs-session-token", "Expiration" => gmdate("Y-m-d\\\\TH:i:s\\\\Z", time() + 3600)]);
        ');
        $port = Fpm::freePort();
        $server->url = "http://127.0.0.1:$port/v2/credentials/task";
        $server->proc = proc_open(
            [PHP_BINARY, '-n', '-S', "127.0.0.1:$port", "$server->dir/router.php"],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']],
            $pipes
        );
        $deadline = microtime(true) + 10;
        while (microtime(true) < $deadline) {
            $sock = @fsockopen('127.0.0.1', $port, $errno, $errstr, 0.2);
            if ($sock) {
                fclose($sock);
                return $server;
            }
            usleep(50_000);
        }
        $server->stop();
        throw new \RuntimeException('the container credentials endpoint did not start');
    }

    /** How many requests were answered with credentials. */
    public function hits(): int
    {
        return strlen((string) @file_get_contents("$this->dir/hits"));
    }

    public function stop(): void
    {
        if (is_resource($this->proc)) {
            proc_terminate($this->proc);
            proc_close($this->proc);
        }
        array_map('unlink', glob("$this->dir/*") ?: []);
        @rmdir($this->dir);
    }
}
