import { Client, utils } from 'ssh2';
console.log(typeof Client, typeof utils.parseKey);
