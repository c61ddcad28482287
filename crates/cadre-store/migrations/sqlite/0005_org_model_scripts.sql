-- A `scripted` model replays this JSON list of answers (tests, offline demos).
ALTER TABLE org_models ADD COLUMN script TEXT;
