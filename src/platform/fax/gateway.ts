/** A fax gateway: the service hands it a PDF and a number. Adapters for real providers implement this. */
export interface FaxGateway {
  /** Resolves with the gateway's reference once the fax is accepted; rejects when it cannot be sent. */
  send(fax: { to: string; pdf: Buffer; reference: string }): Promise<{ id: string }>
}
