/**
 * poolifier's worker file for the pool scenario: the same task function as `../tasks/echo.ts`,
 * registered the way poolifier requires (a `ThreadWorker` made in the worker module).
 */
import { ThreadWorker } from 'poolifier'
import echo from '../tasks/echo.js'

export default new ThreadWorker<number, number>((input) => echo(input as number))
