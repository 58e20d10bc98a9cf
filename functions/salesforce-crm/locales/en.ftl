# The salesforce-crm plugin's messages to callers (tool results and errors the agent relays).
duplicate-rules = Salesforce's duplicate rules refused this lead ({ $said }). Look for the person with FindLeads before creating another lead.
allowance-spent = Salesforce's API allowance for this organization is used up for now; retry later
lead-sources = Salesforce takes only its listed lead sources here: { $said }
refused = Salesforce refused the { $what ->
        [query] query
        [create] new lead
       *[update] status change
    }: { $said }
name-needed = give the person's name: a last name of at most 80 characters, first names of at most 40
contact-needed = give an email address or a phone number (both is best) so someone can follow up
already-on-file = A lead with the same email address or phone number is already on file: use leadId { $id } instead of creating a new lead.
search-needs = give an email address, a phone number or the start of a name to search by
not-a-status = '{ $status }' is not one of this organization's lead statuses: { $statuses }
manager-only = Leads are set to { $status } by a manager in Salesforce, not by this assistant.
no-lead = No lead with leadId { $id }. Find it with FindLeads.
