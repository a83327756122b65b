-- Least privilege per client entity: a second row-level condition beside the tenant one.
-- The tenant scope sets app.entity_scope to '*' (every entity of the tenant) or to a uuid
-- array literal of the entities the caller is assigned to. Unset or empty, no entity is
-- visible (fail closed). Entity-owned tables add a RESTRICTIVE policy on this function, so
-- it is ANDed with the tenant policy rather than widening it.

create function entity_visible(entity uuid) returns boolean
  language sql stable parallel safe
  as $$
    select case coalesce(current_setting('app.entity_scope', true), '')
      when '*' then true
      when '' then false
      else entity = any (current_setting('app.entity_scope', true)::uuid[])
    end
  $$;

grant execute on function entity_visible(uuid) to {{runtime_role}};

create policy entity_scope on entities as restrictive
  using (entity_visible(id))
  with check (entity_visible(id));
