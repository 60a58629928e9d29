import type { NewOrganisation } from '../platform/db/schema.ts'

/**
 * Demo organisations. Identifiers are synthetic but valid (SIREN and RPPS Luhn keys, FINESS with real
 * department codes); lab names are BDPM holders so that the demo products map to them. Postal addresses (used
 * by the letters sent when a fax fails) are the public ones of the authorities and the hospital, invented for the
 * others.
 */
type Demo = Omit<NewOrganisation, 'updated_at' | 'region'> & { subscribedSince?: string }

export const DEMO_ORGANISATIONS: Demo[] = [
  { id: 'ANSM', role: 'ansm', name: 'Agence nationale de sécurité du médicament', department: '93', city: 'Saint-Denis', address_line1: '143-147 boulevard Anatole France', postal_code: '93200' },
  { id: 'ORDRE', role: 'ordre', name: 'Ordre national des pharmaciens (opérateur)', department: '75', city: 'Paris', address_line1: '4 avenue Ruysdaël', postal_code: '75008' },
  { id: 'MINISTERE', role: 'ministry', name: 'Ministère de la Santé — DGS', department: '75', city: 'Paris', address_line1: '14 avenue Duquesne', postal_code: '75007' },
  // labs: the first three have signed the agreement (subscribed), the others have not
  { id: '301234563', role: 'lab', name: 'ARROW GENERIQUES', department: '69', city: 'Lyon', email: 'qualite@arrow.example', fax: '+33 4 00 00 00 63', address_line1: '10 rue des Génériques', postal_code: '69007', subscribedSince: '2024-01-15T00:00:00Z' },
  { id: '412345670', role: 'lab', name: 'BIOGARAN', department: '92', city: 'Colombes', email: 'pharmacovigilance@biogaran.example', fax: '+33 1 00 00 00 67', address_line1: '20 rue de la Pharmacovigilance', postal_code: '92700', subscribedSince: '2023-06-01T00:00:00Z' },
  { id: '523456788', role: 'lab', name: 'VIATRIS SANTE', department: '69', city: 'Lyon', email: 'qualite@viatris.example', address_line1: '5 rue des Laboratoires', postal_code: '69007', subscribedSince: '2025-03-10T00:00:00Z' },
  { id: '634567895', role: 'lab', name: 'ACCORD HEALTHCARE FRANCE', department: '59', city: 'Lille', email: 'qualite@accord.example', address_line1: '45 rue du Faubourg de Roubaix', postal_code: '59000' },
  { id: '745678904', role: 'lab', name: 'PHARMA DEVELOPPEMENT', department: '31', city: 'Toulouse', email: 'contact@pharmadev.example', address_line1: '8 allée Jean Jaurès', postal_code: '31000' },
  // pharmacies (FINESS géographique): Paris, Lyon, Marseille, Ajaccio (Corsica), Pointe-à-Pitre (Guadeloupe), Saint-Denis (La Réunion)
  { id: '750100010', role: 'pharmacy', name: 'Pharmacie du Marais', department: '75', city: 'Paris', email: 'marais@pharmacie.example', address_line1: '12 rue de Bretagne', postal_code: '75003' },
  { id: '690100020', role: 'pharmacy', name: 'Pharmacie des Terreaux', department: '69', city: 'Lyon', address_line1: '3 place des Terreaux', postal_code: '69001' },
  { id: '130100030', role: 'pharmacy', name: 'Pharmacie du Vieux-Port', department: '13', city: 'Marseille', address_line1: '21 quai du Port', postal_code: '13002' },
  { id: '2A0100040', role: 'pharmacy', name: 'Pharmacie de la Citadelle', department: '2A', city: 'Ajaccio', address_line1: '5 boulevard Danielle Casanova', postal_code: '20000' },
  { id: '971100050', role: 'pharmacy', name: 'Pharmacie de la Darse', department: '971', city: 'Pointe-à-Pitre', address_line1: '7 quai Lardenoy', postal_code: '97110' },
  { id: '974100060', role: 'pharmacy', name: 'Pharmacie du Barachois', department: '974', city: 'Saint-Denis', address_line1: '2 rue de Paris', postal_code: '97400' },
  { id: '920100070', role: 'wholesaler', name: 'Répartition Île-de-France', department: '92', city: 'Nanterre', fax: '+33 1 00 00 00 70', address_line1: '12 rue des Entrepôts', address_line2: 'Zone d’activités des Guilleraies', postal_code: '92000' },
  { id: '750100080', role: 'hospital', name: 'PUI — Hôpital Saint-Antoine', department: '75', city: 'Paris', fax: '+33 1 00 00 00 80', address_line1: '184 rue du Faubourg Saint-Antoine', address_line2: 'Pharmacie à usage intérieur', postal_code: '75012' },
  { id: '10001234565', role: 'prescriber', name: 'Dr Claire Martin (médecine générale)', department: '75', city: 'Paris', address_line1: '40 rue de Turenne', postal_code: '75003' },
  { id: '10002345675', role: 'prescriber', name: 'Dr Karim Benali (pédiatrie)', department: '13', city: 'Marseille', address_line1: '58 rue de Rome', postal_code: '13006' },
]
