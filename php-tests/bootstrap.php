<?php

// Loaded by PHPUnit. php-tests/run starts moto and the proxy (tests/support/stack.py),
// exports their AWS_* settings and loads the extension with -d extension=
// (or, with SSM_DB_CONFIG_INSTALLED=1, relies on the installed package's php.ini).
declare(strict_types=1);

if (!extension_loaded('ssm_db_config')) {
    fwrite(STDERR, "The ssm_db_config extension is not loaded: run the tests through php-tests/run\n");
    exit(2);
}
$required = ['MOTO_URL', 'PROXY_URL', 'SSM_TEST_CANARY'];
if (getenv('SSM_DB_CONFIG_INSTALLED') !== '1') {
    $required[] = 'SSM_DB_CONFIG_SO';
}
foreach ($required as $var) {
    if (getenv($var) === false) {
        fwrite(STDERR, "$var is not set: run the tests through php-tests/run\n");
        exit(2);
    }
}
require __DIR__ . '/support/Aws.php';
require __DIR__ . '/support/PhpProcess.php';
require __DIR__ . '/support/Fpm.php';
require __DIR__ . '/support/ContainerCredentials.php';
require __DIR__ . '/support/TestCase.php';
