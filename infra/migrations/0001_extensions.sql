-- Extensions the archive and its search rely on, and the platform's agency directory.

CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- unaccent() is only STABLE (it reads a dictionary), so it cannot back an index; this wrapper
-- pins the dictionary and is safe to declare IMMUTABLE. lower() + unaccent() is how auditors'
-- "thu tuc hanh chinh" meets the stored "thủ tục hành chính". Đ/đ are not decomposable letters,
-- so they are mapped explicitly.
CREATE OR REPLACE FUNCTION lt_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS
$$ SELECT lower(translate(public.unaccent('public.unaccent'::regdictionary, $1), 'Đđ', 'Dd')) $$;

CREATE TABLE agency (
    code        text PRIMARY KEY CHECK (code ~ '^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$'),
    name        text NOT NULL CHECK (length(name) <= 200),
    parent      text REFERENCES agency (code) DEFERRABLE INITIALLY DEFERRED,
    valid_from  date NOT NULL,
    valid_to    date,
    successor   text REFERENCES agency (code) DEFERRABLE INITIALLY DEFERRED,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX agency_parent_idx ON agency (parent);
