from pathlib import Path

import pytest

from core.errors import ConfigError
from kafka_io.security import aiokafka_security, confluent_security
from core.settings import Secret, Settings


def test_secrets_never_show_in_reprs():
    s = Settings.from_env({"CANDLEFLOW_BROKER_SASL_PASSWORD": "hunter2-pw", "CANDLEFLOW_ADMIN_TOKEN": "tok-123",
                           "CANDLEFLOW_BROKER_SECURITY_PROTOCOL": "SASL_SSL"})
    assert "hunter2-pw" not in repr(s) and "tok-123" not in repr(s)
    assert "hunter2" not in repr(Secret("hunter2"))
    assert aiokafka_security(s)["sasl_plain_password"] == "hunter2-pw"
    assert confluent_security(s)["security.protocol"] == "SASL_SSL"


@pytest.mark.parametrize("env, fragment", [
    ({"CANDLEFLOW_BROKER_SECURITY_PROTOCOL": "TLS"}, "SECURITY_PROTOCOL"),
    ({"CANDLEFLOW_SINKS": "mongo"}, "SINKS"),
    ({"CANDLEFLOW_OUTCOME_LOOP": "maybe"}, "OUTCOME_LOOP"),
    ({"CANDLEFLOW_AGGREGATE_TO": "5m"}, "AGGREGATE_TO"),
    ({"CANDLEFLOW_ONLINE_WEIGHT": "2"}, "ONLINE_WEIGHT"),
    ({"CANDLEFLOW_ADAPTIVE_THRESHOLD": "true", "CANDLEFLOW_SIGNAL_THRESHOLD": "0.7"}, "SIGNAL_THRESHOLD_MAX"),
    ({"CANDLEFLOW_ADAPTIVE_THRESHOLD": "often"}, "ADAPTIVE_THRESHOLD"),
    ({"CANDLEFLOW_WEB_PORT": "70000"}, "WEB_PORT"),
    ({"CANDLEFLOW_MAX_MESSAGE_BYTES": "10"}, "MAX_MESSAGE_BYTES"),
])
def test_bad_configuration_is_one_clear_error(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env({"CANDLEFLOW_TIMEFRAMES": "5m", **env})


def test_the_url_other_workers_route_to():
    import socket

    assert Settings().web_url == "http://127.0.0.1:6066"
    assert Settings(web_host="0.0.0.0", web_port=7000).web_url == f"http://{socket.gethostname()}:7000"
    assert Settings(web_host="0.0.0.0", web_advertised_host="worker-2.internal").web_url == "http://worker-2.internal:6066"


def test_one_environment_parser_reads_every_settings_object():
    """Settings, StorageSettings and RetrainConfig go through the same parser: same types, same errors."""
    from storage.config import StorageSettings
    from training.retrain_worker import RetrainConfig

    config = RetrainConfig.from_env({"CANDLEFLOW_RETRAIN_FILES": "a.csv, b.csv.gz", "CANDLEFLOW_RETRAIN_USE_POSTGRES": "no",
                                     "CANDLEFLOW_RETRAIN_WINDOW": "300", "CANDLEFLOW_ARTIFACTS_DIR": "/srv/artifacts"})
    assert config.files == (Path("a.csv"), Path("b.csv.gz")) and config.use_postgres is False
    assert config.window == 300 and config.artifacts_dir == Path("/srv/artifacts")
    for cls, name in ((RetrainConfig, "CANDLEFLOW_RETRAIN_USE_TOPICS"), (Settings, "CANDLEFLOW_PATTERNS")):
        with pytest.raises(ConfigError, match=f"{name} must be true or false"):
            cls.from_env({name: "perhaps"})
    with pytest.raises(ConfigError, match="CANDLEFLOW_SINK_BATCH_SIZE must be an integer"):
        StorageSettings.from_env({"CANDLEFLOW_SINK_BATCH_SIZE": "many"})
