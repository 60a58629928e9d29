import type { NewOrganisation } from '../platform/db/schema.ts'

/**
 * Demo organisations. Identifiers are synthetic but valid (SIREN and RPPS Luhn keys, FINESS with real
 * department codes); lab names are BDPM holders so that the demo products map to them.
 */
type Demo = Omit<NewOrganisation, 'updated_at' | 'region'> & { subscribedSince?: string }

export const DEMO_ORGANISATIONS: Demo[] = [
  { id: 'ANSM', role: 'ansm', name: 'Agence nationale de sécurité du médicament', department: '93', city: 'Saint-Denis' },
  { id: 'ORDRE', role: 'ordre', name: 'Ordre national des pharmaciens (opérateur)', department: '75', city: 'Paris' },
  { id: 'MINISTERE', role: 'ministry', name: 'Ministère de la Santé — DGS', department: '75', city: 'Paris' },
  // labs: the first three have signed the agreement (subscribed), the others have not
  { id: '301234563', role: 'lab', name: 'ARROW GENERIQUES', department: '69', city: 'Lyon', email: 'qualite@arrow.example', subscribedSince: '2024-01-15T00:00:00Z' },
  { id: '412345670', role: 'lab', name: 'BIOGARAN', department: '92', city: 'Colombes', email: 'pharmacovigilance@biogaran.example', subscribedSince: '2023-06-01T00:00:00Z' },
  { id: '523456788', role: 'lab', name: 'VIATRIS SANTE', department: '69', city: 'Lyon', email: 'qualite@viatris.example', subscribedSince: '2025-03-10T00:00:00Z' },
  { id: '634567895', role: 'lab', name: 'ACCORD HEALTHCARE FRANCE', department: '59', city: 'Lille', email: 'qualite@accord.example' },
  { id: '745678904', role: 'lab', name: 'PHARMA DEVELOPPEMENT', department: '31', city: 'Toulouse', email: 'contact@pharmadev.example' },
  // pharmacies (FINESS géographique): Paris, Lyon, Marseille, Ajaccio (Corsica), Pointe-à-Pitre (Guadeloupe), Saint-Denis (La Réunion)
  { id: '750100010', role: 'pharmacy', name: 'Pharmacie du Marais', department: '75', city: 'Paris', email: 'marais@pharmacie.example' },
  { id: '690100020', role: 'pharmacy', name: 'Pharmacie des Terreaux', department: '69', city: 'Lyon' },
  { id: '130100030', role: 'pharmacy', name: 'Pharmacie du Vieux-Port', department: '13', city: 'Marseille' },
  { id: '2A0100040', role: 'pharmacy', name: 'Pharmacie de la Citadelle', department: '2A', city: 'Ajaccio' },
  { id: '971100050', role: 'pharmacy', name: 'Pharmacie de la Darse', department: '971', city: 'Pointe-à-Pitre' },
  { id: '974100060', role: 'pharmacy', name: 'Pharmacie du Barachois', department: '974', city: 'Saint-Denis' },
  { id: '920100070', role: 'wholesaler', name: 'Répartition Île-de-France', department: '92', city: 'Nanterre', fax: '+33 1 00 00 00 70' },
  { id: '750100080', role: 'hospital', name: 'PUI — Hôpital Saint-Antoine', department: '75', city: 'Paris', fax: '+33 1 00 00 00 80' },
  { id: '10001234565', role: 'prescriber', name: 'Dr Claire Martin (médecine générale)', department: '75', city: 'Paris' },
  { id: '10002345675', role: 'prescriber', name: 'Dr Karim Benali (pédiatrie)', department: '13', city: 'Marseille' },
]
