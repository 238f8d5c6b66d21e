// Written by tools/getopt-tables from each command's help (GetoptTable(helpText:));
// do not edit. GetoptTablesTests fails when a command's options no longer match.

extension GetoptTable {
    /// The option table of the command at `path` (its names from the root, "repo init").
    static func generated(for path: String) -> GetoptTable? {
        let spec: String
        switch path {
        case "backup": spec = "?/help C/create-slot D/pgdata= F/format= N/no-sync P/progress R/write-recovery-conf S/slot= T/tablespace-mapping= U/username= W/password X/wal-method= Z/compress= c/checkpoint= d/dbname= h/host= i/incremental= json l/label= level= manifest-checksums= manifest-force-encode n/no-clean no-estimate-size no-manifest no-slot no-verify-checksums p/port= r/max-rate= record-stream= repo= s/status-interval= sync-method= t/target= v/verbose version w/no-password waldir= z/gzip"
        case "receive-wal": spec = "?/help D/directory= E/endpos= S/slot= U/username= W/password Z/compress= create-slot d/dbname= drop-slot h/host= if-not-exists json metrics-addr= n/no-loop no-sync p/port= reconnect-attempts= reconnect-max-delay= s/status-interval= synchronous v/verbose version w/no-password"
        case "verify": spec = "?/help F/format= P/progress backup= e/exit-on-error i/ignore= json m/manifest-path= n/no-parse-wal no-wal q/quiet repo= s/skip-checksums version w/wal-directory= wal-archive="
        case "restore": spec = "?/help D/target-dir= N/no-sync T/tablespace-mapping= backup= drill drill-timeout= force json keep no-verify pg-bin= repo= target-action= target-lsn= target-name= target-time= target-timeline= target-xid= target= v/verbose version wal-archive="
        case "wal-fetch": spec = "?/help partial version wal-archive="
        case "repo": spec = "?/help version"
        case "repo init": spec = "?/help U/username= W/password Z/compress= d/dbname= h/host= p/port= repo= slot= v/verbose version w/no-password"
        case "repo export": spec = "?/help D/target-dir= T/tablespace-mapping= backup= repo= v/verbose version"
        case "list": spec = "?/help json repo= version"
        case "expire": spec = "?/help dry-run keep-days= keep-full= repo= v/verbose version"
        case "dump": spec = "?/help P/progress U/username= W/password abort-on-error bin-dir= d/dbname= database= dump-opt= estimate exclude-database= format= h/host= j/jobs= json o/output= p/port= v/verbose version w/no-password"
        case "restore-dump": spec = "?/help U/username= W/password bin-dir= d/dbname= database= h/host= j/jobs= new-name= p/port= replace= roles s/schema-only t/table= v/verbose version w/no-password"
        case "bacula": spec = "?/help version"
        case "bacula install-plugin": spec = "?/help plugin-dir= plugin= version"
        case "bacula backend": spec = "?/help accurate= command= job-id= job-name= level= mode= replace= since= version where="
        case "check": spec = "?/help D/directory= S/slot= U/username= W/password d/dbname= h/host= json p/port= repo= version w/no-password"
        default: return nil
        }
        return GetoptTable(spec: spec)
    }
}
