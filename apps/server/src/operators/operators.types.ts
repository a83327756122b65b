/** A named operator of the platform (control plane). `id` is the uuid; APIs show `opr_…`. */
export interface Operator {
  id: string;
  name: string;
  keyPrefix: string;
  createdBy: string;
  createdAt: Date;
  revokedAt: Date | null;
}
