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
    ({"CANDLEFLOW_FAULT_KILL_AT": "after-series:3"}, "FAULT_KILL_AT"),
])
def test_bad_configuration_is_one_clear_error(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env({"CANDLEFLOW_TIMEFRAMES": "5m", **env})


@pytest.mark.parametrize("stage", ["after-outputs:1", "after-learners:3", "after-state:12"])
def test_each_checkpoint_stage_a_failure_test_can_kill_at(stage):
    assert Settings.from_env({"CANDLEFLOW_TIMEFRAMES": "5m", "CANDLEFLOW_FAULT_KILL_AT": stage}).fault_kill_at == stage


def test_the_url_other_workers_route_to():
    import socket

    assert Settings().web.url == "http://127.0.0.1:6066"
    assert Settings(web={"host": "0.0.0.0", "port": 7000}).web.url == f"http://{socket.gethostname()}:7000"
    assert Settings(web={"host": "0.0.0.0", "advertised_host": "worker-2.internal"}).web.url == "http://worker-2.internal:6066"


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


def test_one_mapping_reads_the_root_and_every_section():
    from core.settings_sections import RetrainConfig, StorageSettings

    env = {"CANDLEFLOW_BROKER": "kafka:9092", "CANDLEFLOW_SINKS": "postgres,redis",
           "CANDLEFLOW_POSTGRES_DSN": "postgresql://u:pg-pw@db/x", "CANDLEFLOW_SINK_BATCH_SIZE": "250",
           "CANDLEFLOW_WEAVIATE_API_KEY": "wv-key", "CANDLEFLOW_RETRAIN_FILES": "a.csv, b.csv.gz",
           "CANDLEFLOW_RETRAIN_USE_POSTGRES": "no", "CANDLEFLOW_ARTIFACTS_DIR": "/srv/artifacts"}
    s = Settings.from_env(env)
    assert s.broker.bootstrap == "kafka:9092" and s.sinks == ("postgres", "redis")
    assert s.storage == StorageSettings.from_env(env) and s.retrain == RetrainConfig.from_env(env)
    assert s.storage.postgres_dsn == "postgresql://u:pg-pw@db/x" and s.storage.sink_batch_size == 250
    assert s.retrain.files == (Path("a.csv"), Path("b.csv.gz")) and s.retrain.use_postgres is False
    assert s.retrain.artifacts_dir == Path("/srv/artifacts")
    # Overrides win: a section given whole, or a mapping of the section's own overrides.
    assert Settings.from_env(env, retrain={"window": 300}).retrain.window == 300
    assert Settings.from_env(env, storage=StorageSettings()).storage.sink_batch_size == 500
    assert Settings().storage == StorageSettings() and Settings().retrain == RetrainConfig()


def test_secrets_are_secret_types_in_every_section():
    s = Settings.from_env({"CANDLEFLOW_POSTGRES_DSN": "postgresql://u:pg-pw@db/x", "CANDLEFLOW_REDIS_URL": "redis://:rd-pw@r/0",
                           "CANDLEFLOW_WEAVIATE_API_KEY": "wv-key", "CANDLEFLOW_ADMIN_TOKEN": "tok-123",
                           "CANDLEFLOW_STATE_KEY": "sk-1", "CANDLEFLOW_BROKER_SASL_PASSWORD": "sasl-pw"})
    for value in (s.storage.postgres_dsn, s.storage.redis_url, s.storage.weaviate_api_key, s.web.admin_token, s.state_key,
                  s.broker.sasl_password):
        assert isinstance(value, Secret)
    shown = repr(s)
    assert not any(x in shown for x in ("pg-pw", "rd-pw", "wv-key", "tok-123", "sk-1", "sasl-pw"))
    assert "db/x" in shown  # the URLs are shown with their password masked


@pytest.mark.parametrize("env, message", [
    ({"CANDLEFLOW_SINK_BATCH_SIZE": "many"}, "CANDLEFLOW_SINK_BATCH_SIZE must be an integer, got 'many'"),
    ({"CANDLEFLOW_SINK_BATCH_SIZE": "0"}, "CANDLEFLOW_SINK_BATCH_SIZE must be >= 1, got 0"),
    ({"CANDLEFLOW_REDIS_TIMEOUT_S": "soon"}, "CANDLEFLOW_REDIS_TIMEOUT_S must be a number, got 'soon'"),
    ({"CANDLEFLOW_RETRAIN_USE_TOPICS": "perhaps"}, "CANDLEFLOW_RETRAIN_USE_TOPICS must be true or false, got 'perhaps'"),
    ({"CANDLEFLOW_RETRAIN_METRIC": "luck"}, "CANDLEFLOW_RETRAIN_METRIC must be one of accuracy, auc, log_loss, got 'luck'"),
    ({"CANDLEFLOW_RETRAIN_SHARE": "0"}, "CANDLEFLOW_RETRAIN_SHARE must be in (0, 1], got 0.0"),
])
def test_a_bad_value_in_a_section_is_one_line_naming_its_variable(env, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message and "\n" not in str(caught.value)


def test_the_environment_of_a_child_reads_back_as_the_same_settings():
    from core.settings import to_env
    from core.settings_sections import RetrainConfig, StorageSettings

    s = Settings(timeframes=("5m",), sinks=("postgres",), web={"admin_token": Secret("tok")},
                 storage=StorageSettings(postgres_dsn=Secret("postgresql://u:pw@db/x"), sink_batch_size=100),
                 retrain=RetrainConfig(files=(Path("a.csv"),), use_topics=False))
    assert Settings.from_env(to_env(s)) == s
    changed = to_env(s, section_defaults=False)
    assert Settings.from_env(changed) == s
    assert "CANDLEFLOW_REDIS_URL" not in changed and changed["CANDLEFLOW_RETRAIN_USE_TOPICS"] == "False"


def test_the_schema_registry_url_is_a_secret():
    s = Settings.from_env({"CANDLEFLOW_SCHEMA_REGISTRY_URL": "https://user:hunter2@registry:8081"})
    assert isinstance(s.schema_registry_url, Secret) and s.schema_registry_url.startswith("https://")
    assert "hunter2" not in repr(s)


def test_the_network_and_pattern_sections_keep_their_variables_and_round_trip():
    from core.settings import to_env

    env = {"CANDLEFLOW_BROKER": "kafka:9092", "CANDLEFLOW_BROKER_SECURITY_PROTOCOL": "SASL_SSL",
           "CANDLEFLOW_BROKER_SASL_MECHANISM": "SCRAM-SHA-512", "CANDLEFLOW_BROKER_SASL_USERNAME": "svc",
           "CANDLEFLOW_BROKER_SASL_PASSWORD": "sasl-pw", "CANDLEFLOW_BROKER_SSL_CAFILE": "/etc/ca.pem",
           "CANDLEFLOW_FETCH_MAX_WAIT_MS": "100", "CANDLEFLOW_PRODUCER_LINGER_S": "0.005",
           "CANDLEFLOW_WEB_HOST": "0.0.0.0", "CANDLEFLOW_WEB_PORT": "7000", "CANDLEFLOW_WEB_ADVERTISED_HOST": "w-1",
           "CANDLEFLOW_SSE_MAX_CLIENTS": "8", "CANDLEFLOW_ADMIN_TOKEN": "tok-123",
           "CANDLEFLOW_PATTERNS": "on", "CANDLEFLOW_PATTERN_K": "5", "CANDLEFLOW_PATTERN_MAX": "1000"}
    s = Settings.from_env(env)
    assert (s.broker.bootstrap, s.broker.security_protocol, s.broker.sasl_mechanism, s.broker.sasl_username) == \
        ("kafka:9092", "SASL_SSL", "SCRAM-SHA-512", "svc")
    assert s.broker.sasl_password == "sasl-pw" and s.broker.ssl_cafile == "/etc/ca.pem"
    assert s.broker.fetch_max_wait_ms == 100 and s.broker.producer_linger_s == 0.005
    assert (s.web.host, s.web.port, s.web.advertised_host, s.web.sse_max_clients) == ("0.0.0.0", 7000, "w-1", 8)
    assert s.web.admin_token == "tok-123" and s.web.url == "http://w-1:7000"
    assert (s.patterns.enabled, s.patterns.k, s.patterns.max) == (True, 5, 1000)
    assert set(env) <= set(to_env(s))  # every variable keeps its name
    assert Settings.from_env(to_env(s)) == s
    # A child keeps these sections whole (at their defaults too), unlike storage's defaults.
    child = to_env(Settings(), section_defaults=False)
    assert child["CANDLEFLOW_BROKER"] == "127.0.0.1:9092" and child["CANDLEFLOW_WEB_PORT"] == "6066"
    assert child["CANDLEFLOW_PATTERNS"] == "False" and "CANDLEFLOW_REDIS_URL" not in child
    assert Settings.from_env({**env, **child}) == Settings()


@pytest.mark.parametrize("env, message", [
    ({"CANDLEFLOW_BROKER_SECURITY_PROTOCOL": "TLS"},
     "CANDLEFLOW_BROKER_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got 'TLS'"),
    ({"CANDLEFLOW_FETCH_MAX_WAIT_MS": "soon"}, "CANDLEFLOW_FETCH_MAX_WAIT_MS must be an integer, got 'soon'"),
    ({"CANDLEFLOW_FETCH_MAX_WAIT_MS": "20000"}, "CANDLEFLOW_FETCH_MAX_WAIT_MS must be within 0..10000, got 20000"),
    ({"CANDLEFLOW_PRODUCER_LINGER_S": "-1"}, "CANDLEFLOW_PRODUCER_LINGER_S must be within 0..10, got -1.0"),
    ({"CANDLEFLOW_WEB_PORT": "70000"}, "CANDLEFLOW_WEB_PORT must be a TCP port, got 70000"),
    ({"CANDLEFLOW_SSE_MAX_CLIENTS": "0"}, "CANDLEFLOW_SSE_MAX_CLIENTS must be at least 1, got 0"),
    ({"CANDLEFLOW_PATTERNS": "perhaps"}, "CANDLEFLOW_PATTERNS must be true or false, got 'perhaps'"),
    ({"CANDLEFLOW_PATTERN_K": "0"}, "CANDLEFLOW_PATTERN_K must be >= 1, got 0"),
    ({"CANDLEFLOW_PATTERN_MAX": "0"}, "CANDLEFLOW_PATTERN_MAX must be >= 1, got 0"),
])
def test_a_bad_value_in_a_network_or_pattern_section_is_one_line_naming_its_variable(env, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message and "\n" not in str(caught.value)


def test_the_secrets_of_the_broker_and_web_sections_are_hidden():
    from core.settings import BrokerSettings, WebSettings

    s = Settings(broker={"sasl_password": Secret("sasl-pw")}, web={"admin_token": Secret("tok-123")})
    for shown in (repr(s), repr(s.broker), repr(s.web), str(s.broker), str(s.web)):
        assert "sasl-pw" not in shown and "tok-123" not in shown
    assert isinstance(BrokerSettings.from_env({"CANDLEFLOW_BROKER_SASL_PASSWORD": "x"}).sasl_password, Secret)
    assert isinstance(WebSettings.from_env({"CANDLEFLOW_ADMIN_TOKEN": "x"}).admin_token, Secret)


def test_replace_and_overrides_merge_a_mapping_into_a_section():
    from core.settings import WebSettings

    s = Settings(web={"host": "0.0.0.0", "port": 7000}, broker={"bootstrap": "kafka:9092"})
    moved = s.replace(web={"port": 7001}, partitions=8)
    assert (moved.web.host, moved.web.port, moved.partitions) == ("0.0.0.0", 7001, 8)
    assert moved.broker == s.broker and s.web.port == 7000  # the rest kept, the original unchanged
    assert s.replace(web=WebSettings()).web == WebSettings()  # a section given whole replaces it
    assert s.replace(patterns={"enabled": True}).patterns.enabled is True
    with pytest.raises(ConfigError, match="CANDLEFLOW_WEB_PORT must be a TCP port, got 0"):
        s.replace(web={"port": 0})
    with pytest.raises(TypeError):
        s.replace(web={"web_port": 7001})  # the old flat names are gone, in a section too
    env = {"CANDLEFLOW_WEB_HOST": "0.0.0.0", "CANDLEFLOW_BROKER": "kafka:9092"}
    read = Settings.from_env(env, web={"port": 7002}, broker={"fetch_max_wait_ms": 50})
    assert (read.web.host, read.web.port, read.broker.bootstrap, read.broker.fetch_max_wait_ms) == \
        ("0.0.0.0", 7002, "kafka:9092", 50)


@pytest.mark.parametrize("env", [{"CANDLEFLOW_MALLOC_ARENA_MAX": "-1"}, {"CANDLEFLOW_MALLOC_MMAP_THRESHOLD_KB": "99999"},
                                 {"CANDLEFLOW_RECOVERY_STALL_S": "0"}])
def test_allocator_and_recovery_settings_refuse_nonsense_in_one_line(env):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value) and next(iter(env)) in str(info.value)
