export const entityTypes = [
  'sole_proprietorship',
  'partnership',
  's_corporation',
  'c_corporation',
  'nonprofit',
] as const;
export type EntityType = (typeof entityTypes)[number];
export type EntityStatus = 'active' | 'archived';

/** A client entity: a company whose books the firm keeps. Ids are uuids. */
export interface Entity {
  id: string;
  name: string;
  entityType: EntityType | null;
  baseCurrency: string;
  fiscalYearEnd: string;
  status: EntityStatus;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewEntity {
  name: string;
  entityType?: EntityType | undefined;
  baseCurrency?: string | undefined;
  fiscalYearEnd?: string | undefined;
}

export interface EntityPage {
  items: Entity[];
  /** The id after which the next page starts, or null on the last page. */
  nextAfterId: string | null;
}
