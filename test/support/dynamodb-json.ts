/** Items as DynamoDB's own JSON: the product's codec (src/lib/catalog/dynamodb-json.ts), for fixtures. */
export { itemsFromJson, itemsToJson } from '../../src/lib/catalog/dynamodb-json.ts';
