/**
 * The postback domain's plain data: what a traffic source sends per
 * postback (a flat object of strings, numbers, booleans and nulls) and the
 * HTTP methods a postback can use. Shared by ingest, `/preview`, the queue
 * codec and delivery.
 */
export type DataValue = string | number | boolean | null;
export type DataObject = Record<string, DataValue>;
export type Method = 'GET' | 'POST';
