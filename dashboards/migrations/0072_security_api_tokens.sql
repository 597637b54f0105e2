-- Security (issue 14): API tokens expire and carry a scope. 'read' tokens may only GET; 'write'
-- tokens may also change things. Tokens made before this migration expire 90 days after creation.
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE api_tokens ADD COLUMN scope text NOT NULL DEFAULT 'read' CHECK (scope IN ('read', 'write'));
UPDATE api_tokens SET expires_at = created_at + interval '90 days', scope = 'write' WHERE expires_at IS NULL;
ALTER TABLE api_tokens ALTER COLUMN expires_at SET NOT NULL;
