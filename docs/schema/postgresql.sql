-- SwarmDirector store schema for postgresql.
-- Generated from the SQLAlchemy models by `swarm-director db export-schema`; do not edit.
-- The live schema is created by the Alembic migrations, which are checked against the
-- same models in CI.

-- agents: An agent of the swarm: the director, a department coordinator, a specialist, ...
CREATE TABLE agents (
	id SERIAL NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	agent_type VARCHAR(20) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	description TEXT, 
	capabilities JSONB NOT NULL, 
	config JSONB NOT NULL, 
	parent_id INTEGER, 
	total_conversations INTEGER NOT NULL, 
	total_messages_sent INTEGER NOT NULL, 
	average_response_time FLOAT, 
	last_conversation_at TIMESTAMP WITH TIME ZONE, 
	last_seen_at TIMESTAMP WITH TIME ZONE, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_agents PRIMARY KEY (id), 
	CONSTRAINT uq_agents_name UNIQUE (name), 
	CONSTRAINT ck_agents_agent_type CHECK (agent_type IN ('supervisor', 'coordinator', 'worker', 'specialist')), 
	CONSTRAINT ck_agents_status CHECK (status IN ('idle', 'active', 'busy', 'offline', 'error')), 
	CONSTRAINT fk_agents_parent_id_agents FOREIGN KEY(parent_id) REFERENCES agents (id) ON DELETE SET NULL
);

CREATE INDEX ix_agents_agent_type_status ON agents (agent_type, status);

CREATE INDEX ix_agents_parent_id ON agents (parent_id);

-- api_keys: One API key. The secret itself is never stored: only ``key_id`` (the non-secret part
CREATE TABLE api_keys (
	id SERIAL NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	key_id VARCHAR(32) NOT NULL, 
	secret_hash VARCHAR(64) NOT NULL, 
	scope VARCHAR(20) NOT NULL, 
	last_used_at TIMESTAMP WITH TIME ZONE, 
	expires_at TIMESTAMP WITH TIME ZONE, 
	revoked_at TIMESTAMP WITH TIME ZONE, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_api_keys PRIMARY KEY (id), 
	CONSTRAINT uq_api_keys_name UNIQUE (name), 
	CONSTRAINT uq_api_keys_key_id UNIQUE (key_id), 
	CONSTRAINT ck_api_keys_scope CHECK (scope IN ('read', 'write', 'admin'))
);

-- attempt_count_deltas: A change to ``attempt_count_hours`` not yet folded into it (PostgreSQL).
CREATE TABLE attempt_count_deltas (
	id BIGSERIAL NOT NULL, 
	epoch_hour BIGINT NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	type VARCHAR(50) NOT NULL, 
	agent_id BIGINT NOT NULL, 
	attempts BIGINT NOT NULL, 
	CONSTRAINT pk_attempt_count_deltas PRIMARY KEY (id)
);

-- attempt_count_hours: Attempts claimed in one UTC hour, by the task's current type and the claiming agent,
CREATE TABLE attempt_count_hours (
	epoch_hour BIGINT NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	type VARCHAR(50) NOT NULL, 
	agent_id BIGINT NOT NULL, 
	attempts BIGINT NOT NULL, 
	CONSTRAINT pk_attempt_count_hours PRIMARY KEY (epoch_hour, kind, type, agent_id)
);

-- attempt_digest_marks: An hour whose digest a change has made stale (PostgreSQL; see the ddl module).
CREATE TABLE attempt_digest_marks (
	id BIGSERIAL NOT NULL, 
	epoch_hour BIGINT NOT NULL, 
	CONSTRAINT pk_attempt_digest_marks PRIMARY KEY (id)
);

CREATE INDEX ix_attempt_digest_marks_epoch_hour ON attempt_digest_marks (epoch_hour);

-- attempt_digests: One ended UTC hour's attempts, per task type (:class:`Digest`, packed by
CREATE TABLE attempt_digests (
	epoch_hour BIGINT NOT NULL, 
	counts TEXT NOT NULL, 
	errors TEXT NOT NULL, 
	payload BYTEA NOT NULL, 
	CONSTRAINT pk_attempt_digests PRIMARY KEY (epoch_hour)
);

-- console_sessions: One console login. The cookie carries a random session id; only its SHA-256 is stored,
CREATE TABLE console_sessions (
	id SERIAL NOT NULL, 
	session_hash VARCHAR(64) NOT NULL, 
	key_id VARCHAR(32), 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	ended_at TIMESTAMP WITH TIME ZONE, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_console_sessions PRIMARY KEY (id), 
	CONSTRAINT uq_console_sessions_session_hash UNIQUE (session_hash)
);

CREATE INDEX ix_console_sessions_expires_at ON console_sessions (expires_at);

-- error_group_deltas: A change to ``error_group_hours`` not yet folded into it (PostgreSQL).
CREATE TABLE error_group_deltas (
	id BIGSERIAL NOT NULL, 
	epoch_hour BIGINT NOT NULL, 
	pattern VARCHAR(200) NOT NULL, 
	logs BIGINT NOT NULL, 
	CONSTRAINT pk_error_group_deltas PRIMARY KEY (id)
);

-- error_group_hours: Error-level logs of one UTC hour and pattern (what ``agent_logs`` holds now).
CREATE TABLE error_group_hours (
	epoch_hour BIGINT NOT NULL, 
	pattern VARCHAR(200) NOT NULL, 
	logs BIGINT NOT NULL, 
	CONSTRAINT pk_error_group_hours PRIMARY KEY (epoch_hour, pattern)
);

-- history: One change of one row: ``changes`` maps each changed field to ``[before, after]``
CREATE TABLE history (
	id BIGSERIAL NOT NULL, 
	entity VARCHAR(20) NOT NULL, 
	entity_id BIGINT NOT NULL, 
	action VARCHAR(20) NOT NULL, 
	changes JSONB NOT NULL, 
	actor VARCHAR(200) NOT NULL, 
	request_id VARCHAR(64), 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	error_message TEXT GENERATED ALWAYS AS (left(changes #>> '{last_error,1}', 500)) STORED, 
	CONSTRAINT pk_history PRIMARY KEY (id)
);

CREATE INDEX ix_history_actor_id ON history (actor, id);

CREATE INDEX ix_history_at ON history (at);

CREATE INDEX ix_history_email_at ON history (entity, at) WHERE entity = 'email';

CREATE INDEX ix_history_entity_entity_id_id ON history (entity, entity_id, id);

CREATE INDEX ix_history_failed_at ON history (entity, at, entity_id, error_message) WHERE action IN ('fail', 'retry', 'expire');

-- idempotency_keys: A client-chosen key for one write, the hash of its body and the result it produced.
CREATE TABLE idempotency_keys (
	id SERIAL NOT NULL, 
	scope VARCHAR(100) NOT NULL, 
	key VARCHAR(200) NOT NULL, 
	request_hash VARCHAR(64) NOT NULL, 
	result JSONB NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_idempotency_keys PRIMARY KEY (id), 
	CONSTRAINT uq_idempotency_keys_scope_key UNIQUE (scope, key)
);

CREATE INDEX ix_idempotency_keys_created_at ON idempotency_keys (created_at);

-- log_volume_deltas: A change to the logs of one UTC hour and level, not yet folded into
CREATE TABLE log_volume_deltas (
	id BIGSERIAL NOT NULL, 
	epoch_hour BIGINT NOT NULL, 
	log_level VARCHAR(20) NOT NULL, 
	logs BIGINT NOT NULL, 
	CONSTRAINT pk_log_volume_deltas PRIMARY KEY (id)
);

-- log_volume_hours: Log records of one UTC hour and level (what ``agent_logs`` holds now).
CREATE TABLE log_volume_hours (
	epoch_hour BIGINT NOT NULL, 
	log_level VARCHAR(20) NOT NULL, 
	logs BIGINT NOT NULL, 
	CONSTRAINT pk_log_volume_hours PRIMARY KEY (epoch_hour, log_level)
);

-- maintenance_events: One administrative action (migrate, backup, cleanup, ...) and how it ended.
CREATE TABLE maintenance_events (
	id SERIAL NOT NULL, 
	operation VARCHAR(20) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	details JSONB NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_maintenance_events PRIMARY KEY (id), 
	CONSTRAINT ck_maintenance_events_operation CHECK (operation IN ('migrate', 'seed', 'reset', 'backup', 'restore', 'verify', 'optimize', 'cleanup', 'check', 'key_create', 'key_revoke')), 
	CONSTRAINT ck_maintenance_events_status CHECK (status IN ('ok', 'failed'))
);

CREATE INDEX ix_maintenance_events_operation_status_started_at ON maintenance_events (operation, status, started_at);

-- statement_timings: One statement shape and its timings, merged from every process that ran it.
CREATE TABLE statement_timings (
	shape_hash VARCHAR(64) NOT NULL, 
	shape TEXT NOT NULL, 
	calls BIGINT NOT NULL, 
	total_ms FLOAT NOT NULL, 
	max_ms FLOAT NOT NULL, 
	last_seen TIMESTAMP WITH TIME ZONE NOT NULL, 
	sources TEXT NOT NULL, 
	CONSTRAINT pk_statement_timings PRIMARY KEY (shape_hash)
);

-- task_attempts: One claim of a task by the queue: who, which attempt, how long it waited and ran, and
CREATE TABLE task_attempts (
	claim_id BIGINT NOT NULL, 
	task_id BIGINT NOT NULL, 
	agent_id BIGINT, 
	attempt INTEGER, 
	claimed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	wait_s FLOAT, 
	run_s FLOAT, 
	end_action VARCHAR(20), 
	CONSTRAINT pk_task_attempts PRIMARY KEY (claim_id)
);

CREATE INDEX ix_task_attempts_claimed_at ON task_attempts (claimed_at);

CREATE INDEX ix_task_attempts_task_id ON task_attempts (task_id);

-- task_count_deltas: A change to ``task_count_hours`` not yet folded into it (PostgreSQL).
CREATE TABLE task_count_deltas (
	id BIGSERIAL NOT NULL, 
	epoch_hour BIGINT NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	type VARCHAR(50) NOT NULL, 
	priority VARCHAR(20) NOT NULL, 
	tasks BIGINT NOT NULL, 
	CONSTRAINT pk_task_count_deltas PRIMARY KEY (id)
);

-- task_count_hours: Tasks created, completed and failed in one UTC hour, by the task's current type and
CREATE TABLE task_count_hours (
	epoch_hour BIGINT NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	type VARCHAR(50) NOT NULL, 
	priority VARCHAR(20) NOT NULL, 
	tasks BIGINT NOT NULL, 
	CONSTRAINT pk_task_count_hours PRIMARY KEY (epoch_hour, kind, type, priority)
);

-- tasks: A task assigned to an agent, possibly a subtask of another.
CREATE TABLE tasks (
	id SERIAL NOT NULL, 
	type VARCHAR(20) NOT NULL, 
	user_id VARCHAR(100), 
	status VARCHAR(20) NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	description TEXT, 
	priority VARCHAR(20) NOT NULL, 
	assigned_agent_id INTEGER, 
	parent_task_id INTEGER, 
	conversation_id INTEGER, 
	completed_at TIMESTAMP WITH TIME ZONE, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	max_attempts INTEGER DEFAULT '3' NOT NULL, 
	not_before TIMESTAMP WITH TIME ZONE, 
	lease_token VARCHAR(64), 
	lease_expires_at TIMESTAMP WITH TIME ZONE, 
	claimed_at TIMESTAMP WITH TIME ZONE, 
	last_error TEXT, 
	result JSONB, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_tasks PRIMARY KEY (id), 
	CONSTRAINT ck_tasks_type CHECK (type IN ('email_draft', 'document_review', 'communication', 'analysis')), 
	CONSTRAINT ck_tasks_status CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')), 
	CONSTRAINT ck_tasks_priority CHECK (priority IN ('low', 'medium', 'high', 'critical')), 
	CONSTRAINT fk_tasks_assigned_agent_id_agents FOREIGN KEY(assigned_agent_id) REFERENCES agents (id) ON DELETE SET NULL, 
	CONSTRAINT fk_tasks_parent_task_id_tasks FOREIGN KEY(parent_task_id) REFERENCES tasks (id) ON DELETE CASCADE
);

CREATE INDEX ix_tasks_assigned_agent_id_id ON tasks (assigned_agent_id, id);

CREATE INDEX ix_tasks_conversation_id ON tasks (conversation_id);

CREATE INDEX ix_tasks_created_at ON tasks (created_at);

CREATE INDEX ix_tasks_parent_task_id_id ON tasks (parent_task_id, id);

CREATE INDEX ix_tasks_status_id ON tasks (status, id);

CREATE INDEX ix_tasks_status_lease_expires_at ON tasks (status, lease_expires_at);

CREATE INDEX ix_tasks_status_priority_id ON tasks (status, priority, id);

CREATE INDEX ix_tasks_type_id ON tasks (type, id);

CREATE INDEX ix_tasks_user_id_id ON tasks (user_id, id);

-- agent_logs: One log record. Rows are never updated, so there is no ``updated_at``.
CREATE TABLE agent_logs (
	id BIGSERIAL NOT NULL, 
	task_id INTEGER NOT NULL, 
	agent_type VARCHAR(50) NOT NULL, 
	message TEXT NOT NULL, 
	timestamp TIMESTAMP WITH TIME ZONE NOT NULL, 
	log_level VARCHAR(20) NOT NULL, 
	agent_id INTEGER, 
	session_id VARCHAR(100), 
	metadata JSONB, 
	error_pattern VARCHAR(200), 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_agent_logs PRIMARY KEY (id), 
	CONSTRAINT fk_agent_logs_task_id_tasks FOREIGN KEY(task_id) REFERENCES tasks (id) ON DELETE CASCADE, 
	CONSTRAINT ck_agent_logs_log_level CHECK (log_level IN ('debug', 'info', 'warning', 'error')), 
	CONSTRAINT fk_agent_logs_agent_id_agents FOREIGN KEY(agent_id) REFERENCES agents (id) ON DELETE SET NULL
);

CREATE INDEX ix_agent_logs_agent_id_timestamp ON agent_logs (agent_id, timestamp);

CREATE INDEX ix_agent_logs_error_pattern_timestamp ON agent_logs (error_pattern, timestamp) WHERE error_pattern IS NOT NULL;

CREATE INDEX ix_agent_logs_log_level_timestamp ON agent_logs (log_level, timestamp);

CREATE INDEX ix_agent_logs_session_id_timestamp ON agent_logs (session_id, timestamp);

CREATE INDEX ix_agent_logs_task_id_timestamp_id ON agent_logs (task_id, timestamp, id);

CREATE INDEX ix_agent_logs_timestamp_id ON agent_logs (timestamp, id);

-- conversations: A conversation; ``participant_count`` and ``message_count`` are kept exact by the store.
CREATE TABLE conversations (
	id SERIAL NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	description TEXT, 
	status VARCHAR(20) NOT NULL, 
	task_id INTEGER, 
	created_by_agent_id INTEGER, 
	participant_count INTEGER NOT NULL, 
	message_count INTEGER NOT NULL, 
	metadata JSONB, 
	completed_at TIMESTAMP WITH TIME ZONE, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_conversations PRIMARY KEY (id), 
	CONSTRAINT ck_conversations_status CHECK (status IN ('active', 'completed', 'archived')), 
	CONSTRAINT fk_conversations_task_id_tasks FOREIGN KEY(task_id) REFERENCES tasks (id) ON DELETE SET NULL, 
	CONSTRAINT fk_conversations_created_by_agent_id_agents FOREIGN KEY(created_by_agent_id) REFERENCES agents (id) ON DELETE SET NULL
);

CREATE INDEX ix_conversations_created_by_agent_id ON conversations (created_by_agent_id);

CREATE INDEX ix_conversations_status_id ON conversations (status, id);

CREATE INDEX ix_conversations_task_id ON conversations (task_id);

-- drafts: Version ``version`` of a task's draft; its content never changes once written.
CREATE TABLE drafts (
	id SERIAL NOT NULL, 
	task_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	content TEXT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	author_agent_id INTEGER, 
	reviewer_agent_id INTEGER, 
	review_notes TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_drafts PRIMARY KEY (id), 
	CONSTRAINT uq_drafts_task_id_version UNIQUE (task_id, version), 
	CONSTRAINT fk_drafts_task_id_tasks FOREIGN KEY(task_id) REFERENCES tasks (id) ON DELETE CASCADE, 
	CONSTRAINT ck_drafts_status CHECK (status IN ('draft', 'under_review', 'approved', 'rejected')), 
	CONSTRAINT fk_drafts_author_agent_id_agents FOREIGN KEY(author_agent_id) REFERENCES agents (id) ON DELETE SET NULL, 
	CONSTRAINT fk_drafts_reviewer_agent_id_agents FOREIGN KEY(reviewer_agent_id) REFERENCES agents (id) ON DELETE SET NULL
);

CREATE INDEX ix_drafts_author_agent_id ON drafts (author_agent_id);

CREATE INDEX ix_drafts_reviewer_agent_id ON drafts (reviewer_agent_id);

CREATE INDEX ix_drafts_status_updated_at ON drafts (status, updated_at, version);

-- email_messages: An email written for a task, from draft to delivery.
CREATE TABLE email_messages (
	id SERIAL NOT NULL, 
	task_id INTEGER NOT NULL, 
	recipient VARCHAR(320) NOT NULL, 
	subject VARCHAR(998) NOT NULL, 
	body TEXT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	sender VARCHAR(320), 
	cc JSONB NOT NULL, 
	bcc JSONB NOT NULL, 
	draft_id INTEGER, 
	sent_at TIMESTAMP WITH TIME ZONE, 
	error_message TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_email_messages PRIMARY KEY (id), 
	CONSTRAINT fk_email_messages_task_id_tasks FOREIGN KEY(task_id) REFERENCES tasks (id) ON DELETE CASCADE, 
	CONSTRAINT ck_email_messages_status CHECK (status IN ('draft', 'queued', 'sent', 'failed', 'delivered')), 
	CONSTRAINT fk_email_messages_draft_id_drafts FOREIGN KEY(draft_id) REFERENCES drafts (id) ON DELETE SET NULL
);

CREATE INDEX ix_email_messages_draft_id ON email_messages (draft_id);

CREATE INDEX ix_email_messages_sent_at ON email_messages (sent_at);

CREATE INDEX ix_email_messages_status_id ON email_messages (status, id);

CREATE INDEX ix_email_messages_task_id ON email_messages (task_id);

-- messages: A message in a conversation, optionally a reply in a thread.
CREATE TABLE messages (
	id BIGSERIAL NOT NULL, 
	conversation_id INTEGER NOT NULL, 
	sender_agent_id INTEGER, 
	message_type VARCHAR(20) NOT NULL, 
	content TEXT NOT NULL, 
	metadata JSONB, 
	parent_message_id BIGINT, 
	thread_id VARCHAR(100), 
	is_edited BOOLEAN NOT NULL, 
	edit_count INTEGER NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_messages PRIMARY KEY (id), 
	CONSTRAINT fk_messages_conversation_id_conversations FOREIGN KEY(conversation_id) REFERENCES conversations (id) ON DELETE CASCADE, 
	CONSTRAINT fk_messages_sender_agent_id_agents FOREIGN KEY(sender_agent_id) REFERENCES agents (id) ON DELETE SET NULL, 
	CONSTRAINT ck_messages_message_type CHECK (message_type IN ('text', 'system', 'error', 'notification')), 
	CONSTRAINT fk_messages_parent_message_id_messages FOREIGN KEY(parent_message_id) REFERENCES messages (id) ON DELETE SET NULL
);

CREATE INDEX ix_messages_conversation_id_id ON messages (conversation_id, id);

CREATE INDEX ix_messages_parent_message_id ON messages (parent_message_id);

CREATE INDEX ix_messages_sender_agent_id ON messages (sender_agent_id);

CREATE INDEX ix_messages_thread_id ON messages (thread_id);

-- conversation_participants: An agent's membership in a conversation.
CREATE TABLE conversation_participants (
	id SERIAL NOT NULL, 
	conversation_id INTEGER NOT NULL, 
	agent_id INTEGER NOT NULL, 
	role VARCHAR(50) NOT NULL, 
	joined_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	left_at TIMESTAMP WITH TIME ZONE, 
	is_active BOOLEAN NOT NULL, 
	message_count INTEGER NOT NULL, 
	last_read_message_id BIGINT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_conversation_participants PRIMARY KEY (id), 
	CONSTRAINT uq_conversation_participants_conversation_id_agent_id UNIQUE (conversation_id, agent_id), 
	CONSTRAINT fk_conversation_participants_conversation_id_conversations FOREIGN KEY(conversation_id) REFERENCES conversations (id) ON DELETE CASCADE, 
	CONSTRAINT fk_conversation_participants_agent_id_agents FOREIGN KEY(agent_id) REFERENCES agents (id) ON DELETE CASCADE, 
	CONSTRAINT fk_conversation_participants_last_read_message_id_messages FOREIGN KEY(last_read_message_id) REFERENCES messages (id) ON DELETE SET NULL
);

CREATE INDEX ix_conversation_participants_agent_id ON conversation_participants (agent_id);

-- Foreign keys of the tasks <-> conversations reference cycle.
ALTER TABLE tasks ADD CONSTRAINT fk_tasks_conversation_id_conversations FOREIGN KEY(conversation_id) REFERENCES conversations (id) ON DELETE SET NULL;

-- Full-text search (see swarm_director.models.fulltext).
CREATE INDEX ix_agent_logs_fts ON agent_logs USING gin (to_tsvector('simple', regexp_replace(left(message, 100000), '[^[:alnum:]]+', ' ', 'g')));

CREATE INDEX ix_tasks_fts ON tasks USING gin (to_tsvector('simple', regexp_replace(left(coalesce(title, '') || ' ' || coalesce(description, ''), 100000), '[^[:alnum:]]+', ' ', 'g')));

CREATE INDEX ix_messages_fts ON messages USING gin (to_tsvector('simple', regexp_replace(left(content, 100000), '[^[:alnum:]]+', ' ', 'g')));

-- Report rollups kept exact by the writes (see swarm_director.models.rollup).
CREATE OR REPLACE FUNCTION log_volume_hours_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO log_volume_deltas (epoch_hour, log_level, logs) SELECT floor(extract(epoch FROM "timestamp") / 3600)::bigint, log_level, -count(*) FROM gone GROUP BY 1, 2; END IF; IF TG_OP IN ('INSERT', 'UPDATE') THEN INSERT INTO log_volume_deltas (epoch_hour, log_level, logs) SELECT floor(extract(epoch FROM "timestamp") / 3600)::bigint, log_level, count(*) FROM added GROUP BY 1, 2; END IF; RETURN NULL; END $$;

CREATE TRIGGER log_volume_hours_insert AFTER INSERT ON agent_logs REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION log_volume_hours_apply();

CREATE TRIGGER log_volume_hours_delete AFTER DELETE ON agent_logs REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION log_volume_hours_apply();

CREATE TRIGGER log_volume_hours_update AFTER UPDATE ON agent_logs REFERENCING OLD TABLE AS gone NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION log_volume_hours_apply();

CREATE OR REPLACE FUNCTION task_count_hours_task() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP IN ('DELETE', 'UPDATE') THEN INSERT INTO task_count_deltas (epoch_hour, kind, type, priority, tasks) SELECT hr, k, OLD.type, OLD.priority, -count(*) FROM (SELECT floor(extract(epoch FROM OLD.created_at) / 3600)::bigint AS hr, 'created' AS k UNION ALL SELECT floor(extract(epoch FROM h.at) / 3600)::bigint, CASE WHEN h.action = 'complete' THEN 'completed' ELSE 'failed' END FROM history h WHERE h.entity_id = OLD.id AND h.entity = 'task' AND (h.action IN ('complete', 'fail') OR (h.action = 'expire' AND h.changes -> 'status' ->> 1 = 'failed'))) AS s WHERE true GROUP BY hr, k ORDER BY hr, k ; END IF; IF TG_OP IN ('INSERT', 'UPDATE') THEN INSERT INTO task_count_deltas (epoch_hour, kind, type, priority, tasks) SELECT hr, k, NEW.type, NEW.priority, count(*) FROM (SELECT floor(extract(epoch FROM NEW.created_at) / 3600)::bigint AS hr, 'created' AS k UNION ALL SELECT floor(extract(epoch FROM h.at) / 3600)::bigint, CASE WHEN h.action = 'complete' THEN 'completed' ELSE 'failed' END FROM history h WHERE h.entity_id = NEW.id AND h.entity = 'task' AND (h.action IN ('complete', 'fail') OR (h.action = 'expire' AND h.changes -> 'status' ->> 1 = 'failed'))) AS s WHERE true GROUP BY hr, k ORDER BY hr, k ; END IF; RETURN NULL; END $$;

CREATE OR REPLACE FUNCTION task_count_hours_step() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'INSERT' THEN INSERT INTO task_count_deltas (epoch_hour, kind, type, priority, tasks) SELECT floor(extract(epoch FROM NEW.at) / 3600)::bigint, CASE WHEN NEW.action = 'complete' THEN 'completed' ELSE 'failed' END, t.type, t.priority, 1 FROM tasks t WHERE t.id = NEW.entity_id ; ELSE INSERT INTO task_count_deltas (epoch_hour, kind, type, priority, tasks) SELECT floor(extract(epoch FROM OLD.at) / 3600)::bigint, CASE WHEN OLD.action = 'complete' THEN 'completed' ELSE 'failed' END, t.type, t.priority, -1 FROM tasks t WHERE t.id = OLD.entity_id ; END IF; RETURN NULL; END $$;

CREATE TRIGGER task_count_hours_task AFTER INSERT OR DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION task_count_hours_task();

CREATE TRIGGER task_count_hours_task_update AFTER UPDATE OF type, priority, created_at ON tasks FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.created_at IS DISTINCT FROM NEW.created_at) EXECUTE FUNCTION task_count_hours_task();

CREATE TRIGGER task_count_hours_step_insert AFTER INSERT ON history FOR EACH ROW WHEN (NEW.entity = 'task' AND (NEW.action IN ('complete', 'fail') OR (NEW.action = 'expire' AND NEW.changes -> 'status' ->> 1 = 'failed'))) EXECUTE FUNCTION task_count_hours_step();

CREATE TRIGGER task_count_hours_step_delete AFTER DELETE ON history FOR EACH ROW WHEN (OLD.entity = 'task' AND (OLD.action IN ('complete', 'fail') OR (OLD.action = 'expire' AND OLD.changes -> 'status' ->> 1 = 'failed'))) EXECUTE FUNCTION task_count_hours_step();
